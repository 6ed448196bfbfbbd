"""The built package: what the wheel and sdist hold, and the installed wheel serving and
calling from outside the checkout."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import REPO_ROOT, free_port, wait_until
from package_support import SERVICE_LOCK, Built, Installed, lock_pins, outside_env, run

# Building and installing take a minute or two on a busy machine (more on a cold pip cache).
pytestmark = pytest.mark.timeout(900)

PROTO = "ledgerd/v1/balance.proto"

# Run by the installed interpreter: the client the wheel ships, a change and a read.
CLIENT_SCRIPT = """
import json, sys
from importlib import resources

import ledgerd
from ledgerd.client import LedgerdClient
from ledgerd.v1 import balance_pb2 as pb

with LedgerdClient(sys.argv[1]) as client:
    change = client.change("DEPOSIT", 42, "USD", "12.5", request_id="package-1", wait=True)
    balances = client.get_balance(42, "USD")
print(json.dumps({
    "module": ledgerd.__file__,
    "status": pb.ChangeStatus.Name(change.status),
    "balances": [[b.currency, b.available, b.frozen] for b in balances],
    "proto": (resources.files("ledgerd.v1") / "balance.proto").read_text(),
}))
"""


def test_wheel_holds_the_package_its_license_and_proto_and_nothing_else(built: Built) -> None:
    """Only ledgerd/ and its dist-info: no tests, harness, data, egg-info or bytecode."""
    names = built.wheel_names()
    dist_info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
    assert PROTO in names
    assert f"{dist_info}/licenses/LICENSE" in names
    strays = [n for n in names if not n.startswith(("ledgerd/", f"{dist_info}/"))]
    assert strays == []
    junk = ("tests/", "harness/", "testing/", "/data/", ".egg-info", "__pycache__", ".pyc")
    assert [n for n in names if any(part in n for part in junk)] == []


def test_wheel_carries_the_operator_page(built: Built) -> None:
    """The page's files are package data: an installed ledgerd serves ``/`` offline."""
    names = built.wheel_names()
    for name in ("index.html", "console.css", "console.js"):
        assert f"ledgerd/console/static/{name}" in names
    assert '<script src="/console/console.js"' in built.wheel_text(
        "ledgerd/console/static/index.html"
    )


def test_wheel_metadata_states_the_license_and_dependency_ranges(built: Built) -> None:
    """SPDX license expression and file; runtime dependencies as ranges, never ``==``."""
    dist_info = next(name.split("/")[0] for name in built.wheel_names() if ".dist-info/" in name)
    metadata = built.wheel_text(f"{dist_info}/METADATA").splitlines()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
    runtime = [
        line for line in metadata if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert runtime
    assert [line for line in runtime if "==" in line] == []


def test_sdist_holds_the_proto_license_and_build_files_and_no_tests(built: Built) -> None:
    """The wheel is built from the sdist, so the sdist carries the proto it copies."""
    names = built.sdist_names()
    for needed in ("proto/" + PROTO, "LICENSE", "pyproject.toml", "setup.py", "README.md"):
        assert needed in names
    assert [n for n in names if n.startswith(("tests/", "data/", "scripts/", "deploy/"))] == []
    assert [n for n in names if "__pycache__" in n or n.endswith(".pyc")] == []


def test_installed_dependencies_are_consistent_and_locked(installed: Installed) -> None:
    """pip check passes, and every installed distribution has its version in the lock."""
    checked = run([str(installed.bin("pip")), "check"], installed.venv)
    assert "No broken requirements" in checked.stdout
    frozen = run([str(installed.bin("pip")), "freeze", "--exclude", "ledgerd"], installed.venv)
    locked = {pin.lower().replace("_", "-") for pin in lock_pins(SERVICE_LOCK)}
    installed_pins = {line.lower().replace("_", "-") for line in frozen.stdout.split()}
    assert installed_pins - locked == set()


@pytest.fixture
def server_target(installed: Installed, tmp_path: Path) -> Iterator[str]:
    """``ledgerd serve`` from the venv's console script, with a working directory, data
    directory and ports of its own; its gRPC address. Stopped with SIGTERM (must exit 0)."""
    grpc_port, metrics_port = free_port(), free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [str(installed.bin("ledgerd")), "serve"],
        cwd=tmp_path,
        env=outside_env(
            {
                "LEDGERD_DATA_DIR": str(tmp_path / "data"),
                "LEDGERD_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
                "LEDGERD_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            }
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    target = f"127.0.0.1:{grpc_port}"
    request = health_pb2.HealthCheckRequest(service="ledgerd.v1.BalanceService")
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def serving() -> bool:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            answer = health.Check(request, timeout=1.0)
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

        wait_until(serving, 60.0, "installed ledgerd serving", ignoring=(grpc.RpcError,))
    yield target
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0, (tmp_path / "server.log").read_text()


def test_installed_client_changes_and_reads_a_balance_outside_the_checkout(
    installed: Installed, server_target: str, tmp_path: Path
) -> None:
    """ChangeBalance (wait) then GetBalance with the wheel's client, from the venv alone."""
    done = subprocess.run(
        [str(installed.bin("python")), "-c", CLIENT_SCRIPT, server_target],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert Path(answer["module"]).is_relative_to(installed.venv)
    assert answer["status"].endswith("APPLIED")
    assert answer["balances"] == [["USD", "12.5", "0"]]
    assert answer["proto"] == (REPO_ROOT / "proto" / PROTO).read_text()


def test_mysql_url_without_the_extra_is_one_line_and_exit_code_2(
    installed: Installed, tmp_path: Path
) -> None:
    """The venv has no [mysql] extra: `ledgerd serve` names the extra, without a traceback."""
    done = subprocess.run(
        [str(installed.bin("ledgerd")), "serve"],
        cwd=tmp_path,
        env=outside_env(
            {
                "LEDGERD_DATA_DIR": str(tmp_path / "data"),
                "LEDGERD_STORE_URL": "mysql://ledgerd:ledgerd@127.0.0.1:3306/ledgerd",
            }
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "ledgerd: a mysql:// store URL needs the MySQL driver (mysqlclient), which is not"
        " installed: pip install 'ledgerd[mysql]'"
    ]
