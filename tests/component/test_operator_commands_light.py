"""Operator commands load the backends they touch, never the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# What only the server needs: gRPC, its HTTP stack, the wiring of roles, the roles.
SERVER_MODULES = ("grpc", "aiohttp", "ledgerd.app", "ledgerd.api", "ledgerd.consumer")

# Runs each command in one fresh interpreter, then names the server modules it loaded.
SCRIPT = """
import contextlib, io, json, sys
from ledgerd.cli import main
codes = {}
for argv in (["migrate"], ["shards", "--json"], ["audit", "--json"], ["dlq", "list"]):
    with contextlib.redirect_stdout(io.StringIO()):
        codes[argv[0]] = main(argv)
server = sorted(
    name for name in sys.modules
    if any(name == m or name.startswith(m + ".") for m in sys.argv[1:])
)
print(json.dumps({"codes": codes, "server_modules": server}))
"""


def test_migrate_shards_audit_and_dlq_do_not_import_the_server(tmp_path: Path) -> None:
    """``ledgerd migrate``, ``shards``, ``audit`` and ``dlq list`` on an embedded store
    succeed without importing grpc, the API, the consumer or ``ledgerd.app``."""
    env = {
        **os.environ,
        "LEDGERD_DATA_DIR": str(tmp_path),
        "LEDGERD_STORE_URL": f"sqlite:///{tmp_path}/ledgerd.sqlite",
        "LEDGERD_LOG_URL": "embedded:",
        "LEDGERD_CACHE_URL": "memory:",
    }
    env.pop("LEDGERD_STORE_SHARDS", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *SERVER_MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["codes"] == {"migrate": 0, "shards": 0, "audit": 0, "dlq": 0}
    assert result["server_modules"] == []
