"""The sparse payload's wire format (version 2): one byte string, headers as varints, positions
and 8/4-bit value codes range-coded with adaptive models, a CRC-32 at the end.

Layout (``varint`` = unsigned LEB128, at most 10 bytes)::

    u8      version (= 2)
    u8      dtype (bits 0-1: 0 f2, 1 f4, 2 f8) | value kind << 2 (0 float32, 1 q8, 2 q4)
    varint  ndim (<= 32), then each dimension
    varint  count of kept entries
    q8/q4:  varint bucket_size, then per bucket of kept values float32 lo, float32 step (LE)
    float:  count float32 values (LE)
    bytes   range-coded stream: the index gaps ``g_i = idx_i - idx_{i-1} - 1`` (adaptive
            Exp-Golomb), then the value codes (adaptive bit tree), see
            :mod:`vfl.compression._rangecoder`
    u32     CRC-32 (LE) of everything before it

The quantised values are exactly those of :func:`vfl.compression.quantize` on the kept entries
(``lo[b] + code * step[b]`` per 2048-entry bucket ``b``), so the entropy coding is lossless: the
decoded array is bit-identical to the fixed-width format it replaces. Parsing checks every field
(sizes, bounds, the CRC, that the stream is consumed exactly); a truncated, tampered or hostile
payload raises :class:`CompressionError` with the problem, and decoding work is linear in the
payload's length.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from protocols.messages import message_type
from vfl.compression._payloads import _MAX_ELEMENTS, CompressionError
from vfl.compression._rangecoder import (
    MIN_BITS_PER_DECISION,
    RangeDecoder,
    RangeEncoder,
    decode_gaps,
    decode_symbols,
    encode_gaps,
    encode_symbols,
)

__all__ = [
    "SPARSE_FORMAT_VERSION",
    "SparseArray",
    "pack_sparse",
    "sparse_breakdown",
    "unpack_sparse",
]

SPARSE_FORMAT_VERSION = 2
_DTYPES = ("<f2", "<f4", "<f8")
_VALUE_BITS: tuple[int | None, ...] = (None, 8, 4)
_MAX_NDIM = 32
_CRC = 4


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CompressionError(f"sparse payload is truncated in its {what}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varint(self, what: str) -> int:
        value = 0
        for shift in range(0, 70, 7):
            byte = self.take(1, what)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise CompressionError(f"sparse payload {what} is not a valid varint")


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: str
    count: int
    value_bits: int | None
    bucket_size: int
    lo: np.ndarray
    step: np.ndarray
    floats: np.ndarray
    stream: bytes


def _parse(data: bytes) -> _Header:
    if len(data) < 2 + _CRC:
        raise CompressionError("sparse payload is truncated")
    body, crc = data[:-_CRC], int.from_bytes(data[-_CRC:], "little")
    if zlib.crc32(body) != crc:
        raise CompressionError("sparse payload checksum mismatch (truncated or tampered)")
    cur = _Cursor(body)
    version, flags = cur.take(2, "header")
    if version != SPARSE_FORMAT_VERSION:
        raise CompressionError(f"unsupported sparse payload version {version}")
    if flags & 3 >= len(_DTYPES) or flags >> 2 >= len(_VALUE_BITS):
        raise CompressionError(f"sparse payload flags {flags:#x} are invalid")
    dtype, value_bits = _DTYPES[flags & 3], _VALUE_BITS[flags >> 2]
    ndim = cur.varint("shape")
    if ndim > _MAX_NDIM:
        raise CompressionError(f"sparse payload has {ndim} dimensions (at most {_MAX_NDIM})")
    shape = tuple(cur.varint("shape") for _ in range(ndim))
    size = math.prod(shape)
    if size >= _MAX_ELEMENTS:
        raise CompressionError("compressed payload has too many elements")
    count = cur.varint("count")
    if count > size:
        raise CompressionError(f"sparse count {count} outside [0, {size}]")
    bucket_size, lo, step = 0, np.zeros(0, np.float32), np.zeros(0, np.float32)
    floats = np.zeros(0, np.float32)
    if value_bits is None:
        floats = np.frombuffer(cur.take(4 * count, "values"), dtype="<f4")
        decisions = 1
    else:
        bucket_size = cur.varint("bucket size")
        if not 1 <= bucket_size <= _MAX_ELEMENTS:
            raise CompressionError("quantisation bucket size out of range")
        buckets = -(-count // bucket_size)
        table = np.frombuffer(cur.take(8 * buckets, "bucket table"), dtype="<f4")
        lo, step = table[0::2], table[1::2]
        decisions = 1 + value_bits
    if not (np.all(np.isfinite(floats)) and np.all(np.isfinite(lo)) and np.all(np.isfinite(step))):
        raise CompressionError("sparse payload holds non-finite values")
    stream = body[cur.pos :]
    if count * decisions * MIN_BITS_PER_DECISION > 8 * len(stream) + 40:
        raise CompressionError(f"sparse count {count} exceeds what the stream can hold")
    return _Header(shape, dtype, count, value_bits, bucket_size, lo, step, floats, stream)


def pack_sparse(
    *,
    shape: tuple[int, ...],
    dtype: str,
    indices: np.ndarray,
    values: np.ndarray | None,
    codes: np.ndarray | None = None,
    value_bits: int | None = None,
    bucket_size: int = 0,
    lo: np.ndarray | None = None,
    step: np.ndarray | None = None,
) -> bytes:
    """The version-2 bytes of sorted ``indices`` and their float32 ``values`` or their quantised
    ``codes`` (``value_bits`` 8 or 4, with the per-bucket ``lo``/``step`` tables)."""
    idx = np.asarray(indices, dtype=np.int64)
    gaps = np.diff(idx, prepend=-1) - 1
    if np.any(gaps < 0):
        raise CompressionError("indices must be strictly increasing")
    if idx.size and not 0 <= idx[0] <= idx[-1] < math.prod(shape):
        raise CompressionError(f"sparse indices out of range for shape {shape}")
    if dtype not in _DTYPES or value_bits not in _VALUE_BITS:
        raise CompressionError("sparse payload needs a float dtype and value bits None, 8 or 4")
    flags = _DTYPES.index(dtype) | _VALUE_BITS.index(value_bits) << 2
    out = bytearray([SPARSE_FORMAT_VERSION, flags])
    out += _varint(len(shape)) + b"".join(_varint(int(s)) for s in shape) + _varint(idx.size)
    enc = RangeEncoder()
    encode_gaps(enc, gaps)
    if value_bits is None:
        if values is None or values.size != idx.size:
            raise CompressionError("float sparse payload needs one value per index")
        out += np.asarray(values, dtype="<f4").tobytes()
    else:
        if codes is None or lo is None or step is None or codes.size != idx.size:
            raise CompressionError("quantised sparse payload needs codes, lo and step")
        if codes.size and not 0 <= int(codes.min()) <= int(codes.max()) < 1 << value_bits:
            raise CompressionError(f"quantised codes must fit in {value_bits} bits")
        if bucket_size < 1 or lo.size != step.size or lo.size != -(-idx.size // bucket_size):
            raise CompressionError("quantised sparse payload needs one lo and step per bucket")
        out += _varint(bucket_size)
        out += np.stack([lo, step], axis=1).astype("<f4").tobytes()
        encode_symbols(enc, codes, bits=value_bits)
    out += enc.finish()
    return bytes(out + zlib.crc32(out).to_bytes(_CRC, "little"))


def unpack_sparse(payload: SparseArray) -> tuple[np.ndarray, np.ndarray]:
    """``(indices, values)`` of a payload: sorted int64 positions and float64 values."""
    h = payload._header
    size = math.prod(h.shape)
    dec = RangeDecoder(h.stream)
    gaps = np.array(decode_gaps(dec, h.count, limit=size), dtype=np.int64)
    idx = np.cumsum(gaps + 1) - 1
    if idx.size and idx[-1] >= size:
        raise CompressionError(f"sparse index {int(idx[-1])} out of range for size {size}")
    if h.value_bits is None:
        dec.check_end()
        return idx, h.floats.astype(np.float64)
    codes = np.array(decode_symbols(dec, h.count, bits=h.value_bits), dtype=np.float64)
    dec.check_end()
    bucket = np.arange(h.count) // h.bucket_size
    values = h.lo.astype(np.float64)[bucket] + codes * h.step.astype(np.float64)[bucket]
    return idx, values.astype(np.float32).astype(np.float64)


def sparse_breakdown(payload: SparseArray) -> dict[str, float]:
    """Where a payload's bytes go, for benchmarks: header, bucket table, float values, the
    positions and the value codes (each range-coded alone to split the joint stream), the CRC, and
    per kept entry the bits of each part next to the order-0 empirical entropy of the codes
    ``H = -sum_c p_c log2 p_c`` (what a static coder with a free code table would reach)."""
    h = payload._header
    idx, _ = unpack_sparse(payload)
    dec = RangeDecoder(h.stream)
    decode_gaps(dec, h.count, limit=math.prod(h.shape))
    codes = decode_symbols(dec, h.count, bits=h.value_bits) if h.value_bits else []
    gap_enc = RangeEncoder()
    encode_gaps(gap_enc, np.diff(idx, prepend=-1) - 1)
    position_bytes = len(gap_enc.finish())
    code_bytes = 0
    entropy = 0.0
    if h.value_bits:
        code_enc = RangeEncoder()
        encode_symbols(code_enc, np.asarray(codes), bits=h.value_bits)
        code_bytes = len(code_enc.finish())
        _, freq = np.unique(np.asarray(codes), return_counts=True)
        prob = freq / freq.sum()
        entropy = float(-(prob * np.log2(prob)).sum())
    table = 8 * len(h.lo)
    n = max(h.count, 1)
    return {
        "count": h.count,
        "total_bytes": len(payload.data),
        "header_bytes": len(payload.data) - len(h.stream) - table - 4 * len(h.floats) - _CRC,
        "bucket_table_bytes": table,
        "float_value_bytes": 4 * len(h.floats),
        "stream_bytes": len(h.stream),
        "crc_bytes": _CRC,
        "position_bits_per_entry": 8 * position_bytes / n,
        "code_bits_per_entry": 8 * code_bytes / n,
        "code_entropy_bits": entropy,
        "total_bits_per_entry": 8 * len(payload.data) / n,
    }


@message_type("compression.SparseArray")
@dataclass(frozen=True)
class SparseArray:
    """Kept entries of a sparse array in the version-2 wire format (see the module doc).

    ``shape``, ``dtype``, ``count`` and ``value_bits`` are read from ``data`` (and every header
    field and the checksum checked) when the payload is built, so a malformed payload from a peer
    fails while the channel decodes it.
    """

    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            raise CompressionError("sparse payload data must be bytes")
        object.__setattr__(self, "_parsed", _parse(self.data))  # not a field: not on the wire

    @property
    def _header(self) -> _Header:
        header: _Header = self.__dict__["_parsed"]
        return header

    @property
    def shape(self) -> tuple[int, ...]:
        return self._header.shape

    @property
    def dtype(self) -> str:
        return self._header.dtype

    @property
    def count(self) -> int:
        return self._header.count

    @property
    def value_bits(self) -> int | None:
        return self._header.value_bits
