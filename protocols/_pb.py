"""The generated protobuf/gRPC modules, typed as ``Any`` (they carry no type information)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["pb", "pb_grpc"]

pb: Any = importlib.import_module("protocols._proto.federation_pb2")
pb_grpc: Any = importlib.import_module("protocols._proto.federation_pb2_grpc")
