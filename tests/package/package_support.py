"""Helpers of the package tests: a clean environment for child processes, setup steps,
the lock's pins, and the built sdist and wheel."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import REPO_ROOT

SERVICE_LOCK = REPO_ROOT / "requirements" / "service.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def outside_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment minus what would point a child at the checkout or at
    another environment (PYTHONPATH, a virtualenv) or configure ledgerd (LEDGERD_*)."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("LEDGERD_")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **(extra or {})}


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a setup step; on failure the assertion shows its output."""
    done = subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def lock_pins(lock: Path) -> list[str]:
    """``name==version`` of every package in a hashed lock file, without the hashes."""
    return [
        f"{match[1]}=={match[2]}"
        for line in lock.read_text().splitlines()
        if (match := _PIN.match(line))
    ]


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path

    def wheel_names(self) -> list[str]:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.namelist()

    def wheel_text(self, name: str) -> str:
        with zipfile.ZipFile(self.wheel) as wheel:
            return wheel.read(name).decode()

    def sdist_names(self) -> list[str]:
        """Paths inside the sdist, without its top directory (``ledgerd-0.1.0/``)."""
        with tarfile.open(self.sdist) as sdist:
            return [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]


@dataclass(frozen=True)
class Installed:
    venv: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name
