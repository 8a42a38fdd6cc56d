"""Compressed-array payloads: frozen ``@message_type`` dataclasses the ``struct`` codec carries.

Each payload is self-describing (format version, original shape and dtype) and validates itself
on construction, so a malformed payload from a peer fails while it is decoded (the codec turns
the ``ValueError`` into a ``CodecError``). Arrays inside travel as raw little-endian numpy
buffers. The sparse payload has its own compact format: :mod:`vfl.compression._sparse_wire`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from protocols.codecs import CodecContext
from protocols.messages import StructCodec, message_type
from vfl.errors import VflError

__all__ = [
    "FORMAT_VERSION",
    "REFERENCE_DTYPE",
    "CompressionError",
    "CompressionStats",
    "QuantizedArray",
    "SketchedArray",
    "payload_nbytes",
]

FORMAT_VERSION = 1
REFERENCE_DTYPE = np.dtype("<f4")  # compression ratios are stated against float32
_FLOAT_DTYPES = frozenset({"<f2", "<f4", "<f8"})
_MAX_ELEMENTS = 1 << 28  # decoded arrays are dense: cap what a peer can make us allocate


class CompressionError(VflError, ValueError):
    """A compressed payload is malformed or a compressor was misconfigured."""


def _check_common(version: int, shape: tuple[int, ...], dtype: str) -> int:
    if version != FORMAT_VERSION:
        raise CompressionError(f"unsupported compressed payload version {version}")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise CompressionError("compressed payload shape must be a tuple of non-negative ints")
    if dtype not in _FLOAT_DTYPES:
        raise CompressionError(f"compressed payload dtype {dtype!r} is not a float dtype")
    size = math.prod(shape)
    if size >= _MAX_ELEMENTS:
        raise CompressionError("compressed payload has too many elements")
    return size


def _check_array(value: object, name: str, dtype: str, length: int | None = None) -> None:
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.str != dtype:
        raise CompressionError(f"{name} must be a 1-d {dtype} array")
    if length is not None and value.size != length:
        raise CompressionError(f"{name} has {value.size} entries, expected {length}")


@message_type("compression.QuantizedArray")
@dataclass(frozen=True)
class QuantizedArray:
    """``bits``-bit codes per bucket: value = ``lo[b] + code * step[b]``; 4-bit codes two per byte."""

    version: int
    shape: tuple[int, ...]
    dtype: str
    bits: int
    bucket_size: int
    lo: np.ndarray
    step: np.ndarray
    codes: np.ndarray

    def __post_init__(self) -> None:
        size = _check_common(self.version, self.shape, self.dtype)
        if self.bits not in (4, 8):
            raise CompressionError(f"quantisation bits must be 4 or 8, got {self.bits}")
        if self.bucket_size < 1:
            raise CompressionError("quantisation bucket size must be positive")
        buckets = -(-size // self.bucket_size)
        _check_array(self.lo, "lo", "<f4", buckets)
        _check_array(self.step, "step", "<f4", buckets)
        nbytes = size if self.bits == 8 else (size + 1) // 2
        _check_array(self.codes, "codes", "|u1", nbytes)


@message_type("compression.SketchedArray")
@dataclass(frozen=True)
class SketchedArray:
    """A ``rows x cols`` count sketch; hashes and signs are derived from ``seed``."""

    version: int
    shape: tuple[int, ...]
    dtype: str
    rows: int
    cols: int
    seed: int
    table: np.ndarray

    def __post_init__(self) -> None:
        _check_common(self.version, self.shape, self.dtype)
        if not 1 <= self.rows <= 16 or not 1 <= self.cols <= _MAX_ELEMENTS:
            raise CompressionError("count sketch needs 1..16 rows and a positive width")
        if not 0 <= self.seed < 1 << 64:
            raise CompressionError("count sketch seed must be a 64-bit unsigned int")
        _check_array(self.table, "table", "<f4", self.rows * self.cols)


@dataclass(frozen=True)
class CompressionStats:
    """Bytes of one compressed array: ``raw_bytes`` is the array as float32 (the reference)."""

    raw_bytes: int
    payload_bytes: int

    @property
    def ratio(self) -> float:
        return self.raw_bytes / self.payload_bytes if self.payload_bytes else math.inf


def payload_nbytes(payload: object) -> int:
    """Bytes the payload occupies in an envelope: ``struct`` codec output plus its version byte."""
    parts = StructCodec().encode(payload, CodecContext())
    return 1 + sum(memoryview(p).nbytes for p in parts)
