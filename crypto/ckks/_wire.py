"""Versioned byte formats of CKKS contexts and batches: our header + TenSEAL's serialisation.

Context::

    b"VFLCKKSC" | version u16 | flags u8 (bit 0: secret key present)
    | name_len u8 | name utf-8 | N u32 | scale_bits u8 | n_primes u8 | prime bits u8 * n_primes
    | TenSEAL context bytes

Batch (all integers big-endian)::

    b"VFLCKKSB" | version u16 | context fingerprint 32 B | SHA-256 of the body 32 B | body
    body = n_rows u32 | n_cols u32 | n_chunks u32
           | per chunk: row_start u32 | rows u32 | n_ciphertexts u32 | blocks u32
                        | column i32 * (n_ciphertexts * blocks)
           | per ciphertext (chunk order): length u32 | TenSEAL CKKSVector bytes

The digest detects truncation and corruption; it is not a MAC (authenticity comes from the
signed envelope of the channel layer). The fingerprint binds the batch to the public key it was
encrypted under, so a batch loaded into another context is refused instead of decrypting to noise.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from crypto.ckks._layout import Chunk
from crypto.ckks._presets import CKKSPreset
from crypto.errors import CryptoUsageError, InvalidCiphertext

__all__ = [
    "FORMAT_VERSION",
    "ContextWire",
    "BatchWire",
    "encode_context",
    "decode_context",
    "encode_batch",
    "decode_batch",
]

FORMAT_VERSION = 1
_CTX_MAGIC = b"VFLCKKSC"
_BATCH_MAGIC = b"VFLCKKSB"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")


@dataclass(frozen=True)
class ContextWire:
    """A parsed context header and the TenSEAL bytes behind it."""

    preset: CKKSPreset
    has_secret_key: bool
    tenseal_bytes: bytes


@dataclass(frozen=True)
class BatchWire:
    """A parsed batch: fingerprint, shape, layout and one TenSEAL blob per ciphertext."""

    fingerprint: bytes
    shape: tuple[int, int]
    chunks: tuple[Chunk, ...]
    ciphertexts: tuple[tuple[bytes, ...], ...]


class _Reader:
    """Bounds-checked reader: any overrun raises InvalidCiphertext naming ``what``."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._what = what

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise InvalidCiphertext(f"{self._what} is truncated")
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def i32(self) -> int:
        return int(_I32.unpack(self.take(4))[0])

    def rest(self) -> bytes:
        return self.take(len(self._data) - self._pos)

    def remaining(self) -> int:
        return len(self._data) - self._pos


def encode_context(*, preset: CKKSPreset, has_secret_key: bool, tenseal_bytes: bytes) -> bytes:
    """Header + TenSEAL bytes of a context (see the module docstring)."""
    name = preset.name.encode("utf-8")
    if len(name) > 255:
        raise CryptoUsageError("CKKS preset name is longer than 255 bytes")
    primes = bytes(preset.coeff_mod_bit_sizes)
    return b"".join(
        [
            _CTX_MAGIC,
            _U16.pack(FORMAT_VERSION),
            bytes([1 if has_secret_key else 0, len(name)]),
            name,
            _U32.pack(preset.poly_modulus_degree),
            bytes([preset.scale_bits, len(primes)]),
            primes,
            tenseal_bytes,
        ]
    )


def decode_context(data: bytes) -> ContextWire:
    """Parse :func:`encode_context` output; malformed input raises InvalidCiphertext."""
    what = "CKKS context bytes"
    reader = _Reader(data, what)
    if reader.take(len(_CTX_MAGIC)) != _CTX_MAGIC:
        raise InvalidCiphertext(f"{what} have the wrong magic")
    version = reader.u16()
    if version != FORMAT_VERSION:
        raise InvalidCiphertext(f"{what} have unsupported format version {version}")
    flags = reader.u8()
    if flags > 1:
        raise InvalidCiphertext(f"{what} have unknown flags")
    try:
        name = reader.take(reader.u8()).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidCiphertext(f"{what} have a malformed preset name") from None
    degree = reader.u32()
    scale_bits = reader.u8()
    primes = tuple(reader.take(reader.u8()))
    try:
        preset = CKKSPreset(
            name=name,
            poly_modulus_degree=degree,
            coeff_mod_bit_sizes=primes,
            scale_bits=scale_bits,
        )
    except CryptoUsageError:
        raise InvalidCiphertext(f"{what} carry invalid or insecure parameters") from None
    body = reader.rest()
    if not body:
        raise InvalidCiphertext(f"{what} are truncated")
    return ContextWire(preset=preset, has_secret_key=flags == 1, tenseal_bytes=body)


def encode_batch(
    *,
    fingerprint: bytes,
    shape: tuple[int, int],
    chunks: tuple[Chunk, ...],
    ciphertexts: list[list[bytes]],
) -> bytes:
    """Header + layout + TenSEAL ciphertexts of a batch (see the module docstring)."""
    parts = [_U32.pack(shape[0]), _U32.pack(shape[1]), _U32.pack(len(chunks))]
    for chunk in chunks:
        parts += [
            _U32.pack(chunk.row_start),
            _U32.pack(chunk.rows),
            _U32.pack(len(chunk.columns)),
            _U32.pack(chunk.blocks),
        ]
        parts += [_I32.pack(c) for cols in chunk.columns for c in cols]
    for blobs in ciphertexts:
        for blob in blobs:
            parts += [_U32.pack(len(blob)), blob]
    body = b"".join(parts)
    digest = hashlib.sha256(body).digest()
    return b"".join([_BATCH_MAGIC, _U16.pack(FORMAT_VERSION), fingerprint, digest, body])


def decode_batch(data: bytes, *, slot_count: int) -> BatchWire:
    """Parse :func:`encode_batch` output, checking digest and layout; else InvalidCiphertext."""
    what = "CKKS batch bytes"
    reader = _Reader(data, what)
    if reader.take(len(_BATCH_MAGIC)) != _BATCH_MAGIC:
        raise InvalidCiphertext(f"{what} have the wrong magic")
    version = reader.u16()
    if version != FORMAT_VERSION:
        raise InvalidCiphertext(f"{what} have unsupported format version {version}")
    fingerprint = reader.take(32)
    digest = reader.take(32)
    body = reader.rest()
    if hashlib.sha256(body).digest() != digest:
        raise InvalidCiphertext(f"{what} are truncated or corrupted (digest mismatch)")
    body_reader = _Reader(body, what)
    n_rows, n_cols, n_chunks = body_reader.u32(), body_reader.u32(), body_reader.u32()
    if n_rows < 1 or n_cols < 1 or n_chunks < 1 or n_chunks > n_rows:
        raise InvalidCiphertext(f"{what} have an invalid shape or chunk count")
    chunks = []
    next_row = 0
    for _ in range(n_chunks):
        row_start, rows = body_reader.u32(), body_reader.u32()
        n_cts, blocks = body_reader.u32(), body_reader.u32()
        if row_start != next_row or rows < 1 or row_start + rows > n_rows:
            raise InvalidCiphertext(f"{what} have chunks that do not tile the rows")
        if n_cts < 1 or blocks < 1 or blocks * rows > slot_count:
            raise InvalidCiphertext(f"{what} have a chunk that does not fit the slots")
        if n_cts * blocks * 4 > body_reader.remaining():
            raise InvalidCiphertext(f"{what} are truncated")
        flat = [body_reader.i32() for _ in range(n_cts * blocks)]
        if any(c < -1 or c >= n_cols for c in flat):
            raise InvalidCiphertext(f"{what} assign a block to a column out of range")
        columns = tuple(tuple(flat[m * blocks : (m + 1) * blocks]) for m in range(n_cts))
        chunks.append(Chunk(row_start=row_start, rows=rows, columns=columns))
        next_row = row_start + rows
    if next_row != n_rows:
        raise InvalidCiphertext(f"{what} have chunks that do not tile the rows")
    blobs = tuple(
        tuple(body_reader.take(body_reader.u32()) for _ in chunk.columns) for chunk in chunks
    )
    if body_reader.remaining():
        raise InvalidCiphertext(f"{what} have trailing data")
    return BatchWire(
        fingerprint=fingerprint, shape=(n_rows, n_cols), chunks=tuple(chunks), ciphertexts=blobs
    )
