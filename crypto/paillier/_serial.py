"""Byte formats of Paillier keys and ciphertext arrays (versioned, fixed-width, no pickle).

All integers are big-endian. ``W = ceil(bits(n^2) / 8)`` is the ciphertext width.

Public key (``to_bytes``)::

    b"PAPK" | version u8 = 1 | len(n) u16 | n

Private key (the owner's own key file only)::

    b"PASK" | version u8 = 1 | len(p) u16 | p | len(q) u16 | q

Ciphertext arrays start with a common header, then a kind-specific body::

    b"PAEA" | version u8 = 2 | kind u8 | fingerprint (32 bytes, SHA-256 of the public key bytes)
    kind 1 (EncryptedArray):       ndim u8 | dims u64 * ndim | ciphertexts W * prod(dims)
    kind 2 (PackedEncryptedArray): slot_bits u16 | value_bits u16 | precision_bits u16
                                   | weight u32 | ndim u8 | dims u64 * ndim | count u64
                                   | ciphertexts W * count

The public key travels once (its own message); arrays carry only its fingerprint, and
``from_bytes(data, public_key)`` refuses bytes made under another key.

Version 2 dropped the scale, precision and bound of kind 1 (version 1 carried the exact
``max |v|`` of the plaintexts, a data-dependent statistic, and let the sender declare the scale).
An array read from bytes is undeclared until the receiver sets the scale and bound its protocol
fixes (``EncryptedArray.assume``). The packed kind's layout and weight are public protocol
parameters (slot widths, number of summands), not statistics of the data.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto.errors import InvalidCiphertext

if TYPE_CHECKING:
    from crypto.paillier._encrypted import EncryptedArray
    from crypto.paillier._keys import PaillierPublicKey

__all__ = [
    "VERSION",
    "ARRAY_MAGIC",
    "KIND_ARRAY",
    "KIND_PACKED",
    "Reader",
    "pack_uint",
    "ciphertexts_to_bytes",
    "ciphertexts_from_bytes",
    "shape_to_bytes",
    "array_to_bytes",
    "array_from_bytes",
]

VERSION = 2
ARRAY_MAGIC = b"PAEA"
KIND_ARRAY = 1
KIND_PACKED = 2
_MAX_NDIM = 32


class Reader:
    """Sequential reader over bytes that raises :class:`InvalidCiphertext`-like errors on truncation."""

    def __init__(
        self, data: bytes, *, error: type[Exception] = InvalidCiphertext, what: str = "data"
    ) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._error = error
        self._what = what

    def fail(self, reason: str) -> Exception:
        return self._error(f"malformed {self._what}: {reason}")

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise self.fail("truncated")
        out = bytes(self._data[self._pos : self._pos + n])
        self._pos += n
        return out

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(">" + fmt, self.take(struct.calcsize(">" + fmt)))

    def uint(self, fmt: str) -> int:
        (value,) = self.unpack(fmt)
        return int(value)

    def prefixed_int(self) -> int:
        length = self.uint("H")
        return int.from_bytes(self.take(length), "big")

    def shape(self) -> tuple[int, ...]:
        ndim = self.uint("B")
        if ndim > _MAX_NDIM:
            raise self.fail("too many dimensions")
        return tuple(self.uint("Q") for _ in range(ndim))

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def rest(self) -> bytes:
        return self.take(self.remaining())


def pack_uint(value: int) -> bytes:
    """``len u16 | value`` big-endian, minimal length."""
    raw = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    return struct.pack(">H", len(raw)) + raw


def shape_to_bytes(shape: tuple[int, ...]) -> bytes:
    return struct.pack(">B", len(shape)) + b"".join(struct.pack(">Q", d) for d in shape)


def ciphertexts_to_bytes(cts: list[Any], width: int) -> bytes:
    """Concatenate ciphertexts as fixed-width big-endian integers."""
    return b"".join(gmpy2.mpz(c).to_bytes(width, "big") for c in cts)


def ciphertexts_from_bytes(data: bytes, *, count: int, width: int, n: Any) -> npt.NDArray[Any]:
    """Parse ``count`` fixed-width ciphertexts and check each is a unit of ``Z_{n^2}``.

    ``0 < c < n^2`` and ``gcd(c, n) = 1``; anything else raises :class:`InvalidCiphertext`.
    """
    if len(data) != count * width:
        raise InvalidCiphertext("malformed ciphertext array: wrong length")
    nsq = n * n
    out = np.empty(count, dtype=object)
    from_bytes = gmpy2.mpz.from_bytes
    gcd = gmpy2.gcd
    for i in range(count):
        c = from_bytes(data[i * width : (i + 1) * width], "big")
        if not 0 < c < nsq or gcd(c, n) != 1:
            raise InvalidCiphertext("malformed ciphertext array: value out of range")
        out[i] = c
    return out


def array_to_bytes(arr: EncryptedArray) -> bytes:
    """Kind 1 layout (module docstring): header, shape, ciphertexts (no scale, no bound)."""
    key = arr.public_key
    header = ARRAY_MAGIC + bytes([VERSION, KIND_ARRAY]) + bytes.fromhex(key.fingerprint)
    body = ciphertexts_to_bytes(arr.raw_ciphertexts(), key.ciphertext_bytes)
    return header + shape_to_bytes(arr.shape) + body


def array_from_bytes(data: bytes, public_key: PaillierPublicKey) -> EncryptedArray:
    """Inverse of :func:`array_to_bytes`: an undeclared array (scale unknown, bound ``max_int``).

    Anything malformed raises :class:`InvalidCiphertext`.
    """
    from crypto.paillier._encrypted import EncryptedArray

    reader = Reader(data, what="Paillier ciphertext array")
    magic, version, kind = reader.take(4), reader.uint("B"), reader.uint("B")
    if magic != ARRAY_MAGIC or version != VERSION or kind != KIND_ARRAY:
        raise reader.fail("wrong magic, version or kind")
    if reader.take(32) != bytes.fromhex(public_key.fingerprint):
        raise reader.fail("made under another public key")
    shape = reader.shape()
    width = public_key.ciphertext_bytes
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * width != reader.remaining():
        raise reader.fail("wrong length")
    cts = ciphertexts_from_bytes(reader.rest(), count=count, width=width, n=public_key.n)
    return EncryptedArray(public_key, cts.reshape(shape), scale=None, bound=public_key.max_int)
