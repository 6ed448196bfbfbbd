"""ledgerd as a user gets it: the sdist and wheel built from this checkout, the wheel
installed into a fresh virtual environment outside it.

The build needs the ``build`` package (dev extra) and PyPI (or pip's cache) for the
build backend; the install resolves the wheel's own dependency ranges within the
versions of requirements/service.txt, so it is reproducible and exercises the metadata.
"""

from __future__ import annotations

import sys

import pytest
from harness import REPO_ROOT
from package_support import SERVICE_LOCK, Built, Installed, lock_pins, run


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``python -m build``: the sdist, then the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT)], cwd=out)
    (sdist,) = out.glob("ledgerd-*.tar.gz")
    (wheel,) = out.glob("ledgerd-*.whl")
    return Built(sdist, wheel)


@pytest.fixture(scope="session")
def installed(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel in a fresh venv (no extras), its dependencies held to the service lock."""
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(venv)], cwd=venv)
    constraints = venv / "constraints.txt"
    constraints.write_text("\n".join(lock_pins(SERVICE_LOCK)) + "\n")
    pip = str(venv / "bin" / "pip")
    run([pip, "install", "--quiet", str(built.wheel), "-c", str(constraints)], cwd=venv)
    return Installed(venv)
