"""`scripts/services env`: the variables pointing ledgerd at one store or at two shards."""

from __future__ import annotations

import subprocess

from harness import REPO_ROOT

SCRIPT = str(REPO_ROOT / "scripts" / "services")
FIRST = "mysql://ledgerd:ledgerd@127.0.0.1:3306/ledgerd"
SECOND = "mysql://ledgerd:ledgerd@127.0.0.1:3307/ledgerd"


def env_lines(*args: str) -> list[str]:
    done = subprocess.run(
        [SCRIPT, "env", *args], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.splitlines()


def test_env_points_at_one_store_by_default() -> None:
    first, tests = env_lines()
    assert f"LEDGERD_STORE_URL={FIRST} " in first
    assert "LEDGERD_STORE_SHARDS" not in first
    assert "LEDGERD_TEST_MYSQL2_URL=mysql://ledgerd:ledgerd@127.0.0.1:3307 " in tests


def test_env_shards_2_lists_both_mariadb_servers_shard_zero_first() -> None:
    first, _ = env_lines("--shards", "2")
    assert f"LEDGERD_STORE_SHARDS={FIRST},{SECOND} " in first
    assert "LEDGERD_STORE_URL" not in first


def test_env_refuses_more_shards_than_servers() -> None:
    done = subprocess.run(
        [SCRIPT, "env", "--shards", "3"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "--shards must be 1 or 2" in done.stderr
