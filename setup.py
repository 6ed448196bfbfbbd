"""Ships the API contract inside the package: ``proto/ledgerd/v1/*.proto`` → ``ledgerd/v1/``.

The .proto files live once, in ``proto/`` (buf and ``make proto`` read them there). The
build copies them beside the generated code, at their import path, so an installed
ledgerd serves as protoc's include path (``-I site-packages``) the way grpcio's own
``grpc_health/v1/health.proto`` does. Everything else is declared in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_ROOT = Path("proto")


class BuildPyWithProtos(build_py):
    """build_py, plus a byte-for-byte copy of every ``ledgerd/**/*.proto`` into the build."""

    def run(self) -> None:
        super().run()
        # An editable install imports from src/, where the build directory is never read.
        if self.editable_mode:
            return
        for source in sorted(PROTO_ROOT.glob("ledgerd/**/*.proto")):
            target = Path(self.build_lib) / source.relative_to(PROTO_ROOT)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target), preserve_mode=False)


setup(cmdclass={"build_py": BuildPyWithProtos})
