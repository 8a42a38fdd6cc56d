"""Generated protobuf and gRPC modules (regenerate with ``python protocols/_proto/generate.py``)."""

__all__: list[str] = []
