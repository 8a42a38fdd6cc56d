"""The compressor interface: ``compress`` an array into a typed payload, record its bytes."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from vfl.compression._payloads import (
    _FLOAT_DTYPES,
    REFERENCE_DTYPE,
    CompressionError,
    CompressionStats,
    payload_nbytes,
)

__all__ = ["Compressor"]


class Compressor(abc.ABC):
    """Encodes a float array into a compact payload; keeps the bytes of every call in ``stats``.

    Stateful compressors (error feedback) keep one instance per party and per tensor stream.
    """

    name: str

    def __init__(self) -> None:
        self.stats: list[CompressionStats] = []

    def compress(self, x: np.ndarray) -> Any:
        """Compress ``x`` (any float dtype) and record its :class:`CompressionStats`."""
        arr = np.asarray(x)
        if arr.dtype.kind != "f" or arr.dtype.newbyteorder("<").str not in _FLOAT_DTYPES:
            raise CompressionError(f"can only compress float arrays, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise CompressionError("cannot compress an array with non-finite entries")
        payload = self._compress(arr)
        self.stats.append(
            CompressionStats(
                raw_bytes=arr.size * REFERENCE_DTYPE.itemsize,
                payload_bytes=payload_nbytes(payload),
            )
        )
        return payload

    @abc.abstractmethod
    def _compress(self, x: np.ndarray) -> Any:
        """Compress a finite float array."""

    @abc.abstractmethod
    def decompress(self, payload: Any) -> np.ndarray:
        """Decode a payload this kind of compressor produced (see also ``decompress()``)."""

    @property
    def total_raw_bytes(self) -> int:
        return sum(s.raw_bytes for s in self.stats)

    @property
    def total_payload_bytes(self) -> int:
        return sum(s.payload_bytes for s in self.stats)


def dtype_str(x: np.ndarray) -> str:
    """Little-endian dtype string of a float array (``'<f4'``)."""
    return str(x.dtype.newbyteorder("<").str)
