"""Regenerate federation_pb2.py / federation_pb2_grpc.py from federation.proto.

Run from the repository root: ``python protocols/_proto/generate.py`` (needs grpcio-tools).
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

if __name__ == "__main__":
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{ROOT}",
            f"--python_out={ROOT}",
            f"--grpc_python_out={ROOT}",
            str(HERE.relative_to(ROOT) / "federation.proto"),
        ]
    )
    sys.exit(code)
