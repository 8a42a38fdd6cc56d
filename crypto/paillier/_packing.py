"""Packing several fixed-point values into one Paillier plaintext, with headroom for sums.

Layout (slot 0 is the least significant; ``b = slot_bits``, ``w = value_bits``)::

    m = sum_{j < k} u_j * 2^(j*b),   u_j = round(x_j * 2^precision) + 2^(w-1)  in [0, 2^w)

with ``k = floor((bits(n) - 2) / b)`` slots per ciphertext, so ``m < 2^(bits(n)-2) < n``: 42
slots of 48 bits (32 value bits + 16 bits of headroom) at 2048 bits, 63 at 3072. The offset
``2^(w-1)`` makes every slot non-negative, so carries never cross slots as long as each slot
stays below ``2^b``.

Homomorphic operations multiply the *weight* ``W`` (how many offset values a slot holds):
``E(m1) * E(m2)`` adds slotwise with ``W = W1 + W2``; ``E(m)^k`` for a small integer ``k >= 0``
scales every slot with ``W = k * W``. A slot then holds ``sum v + W * 2^(w-1) <= W * (2^w - 1)``,
which stays below ``2^b`` while ``W <= 2^(b - w)`` (65536 with 16 bits of headroom): a result
beyond that raises :class:`CryptoUsageError`. Decryption subtracts ``W * 2^(w-1)`` per slot.
Negative multipliers are refused (they would need a borrow across slots).

n values cost ``ceil(n / k)`` encryptions, ciphertexts on the wire and CRT decryptions.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto._timing import timed
from crypto.errors import CryptoUsageError, InvalidCiphertext
from crypto.paillier._serial import (
    ARRAY_MAGIC,
    KIND_PACKED,
    VERSION,
    Reader,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
    shape_to_bytes,
)

if TYPE_CHECKING:
    from crypto.paillier._keys import PaillierPublicKey

__all__ = ["PackingLayout", "PackedEncryptedArray", "encrypt_packed", "unpack_plaintexts"]


@dataclass(frozen=True)
class PackingLayout:
    """Slot layout: ``slot_bits`` per slot (multiple of 8, <= 64), of which ``value_bits`` hold
    the offset value and ``slot_bits - value_bits`` are headroom; ``precision_bits`` fractional bits.
    """

    slot_bits: int = 48
    value_bits: int = 32
    precision_bits: int = 16

    def __post_init__(self) -> None:
        if self.slot_bits % 8 or not 8 <= self.slot_bits <= 64:
            raise CryptoUsageError("slot_bits must be a multiple of 8 in [8, 64]")
        if not 2 <= self.value_bits < self.slot_bits:
            raise CryptoUsageError("value_bits must be in [2, slot_bits)")
        if not 0 <= self.precision_bits <= 62:
            raise CryptoUsageError("precision_bits must be in [0, 62]")

    @property
    def headroom_bits(self) -> int:
        return self.slot_bits - self.value_bits

    @property
    def max_weight(self) -> int:
        """Largest number of offset values a slot may accumulate: ``2^headroom_bits``."""
        return 1 << self.headroom_bits

    @property
    def offset(self) -> int:
        return 1 << (self.value_bits - 1)

    def slots(self, public_key: PaillierPublicKey) -> int:
        """Slots per ciphertext under ``public_key``: ``floor((bits(n) - 2) / slot_bits)``."""
        k = (public_key.bits - 2) // self.slot_bits
        if k < 1:
            raise CryptoUsageError("key too small for one slot")
        return k


def _encode_offsets(x: Any, layout: PackingLayout) -> npt.NDArray[np.uint64]:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise CryptoUsageError(f"cannot pack dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise CryptoUsageError("cannot encode NaN or infinite values")
    v = np.rint(np.ldexp(arr, layout.precision_bits))
    half = float(layout.offset)
    if v.size and (v.min() < -half or v.max() > half - 1):
        raise CryptoUsageError(
            f"value does not fit {layout.value_bits} signed bits at precision {layout.precision_bits}"
        )
    out: npt.NDArray[np.uint64] = (v.astype(np.int64) + layout.offset).astype(np.uint64).reshape(-1)
    return out


def _pack(u: npt.NDArray[np.uint64], k: int, slot_bytes: int) -> list[int]:
    count = -(-len(u) // k)
    padded = np.zeros(count * k, dtype=np.uint64)
    padded[: len(u)] = u
    rows = padded.reshape(count, k)[:, ::-1].astype(">u8").view(np.uint8).reshape(count, k, 8)
    raw = np.ascontiguousarray(rows[:, :, 8 - slot_bytes :]).reshape(count, k * slot_bytes)
    return [int.from_bytes(row.tobytes(), "big") for row in raw]


def _unpack(ms: list[Any], k: int, slot_bytes: int) -> npt.NDArray[np.uint64]:
    width = k * slot_bytes
    try:
        raw = b"".join(int(m).to_bytes(width, "big") for m in ms)
    except OverflowError as exc:
        raise InvalidCiphertext("packed plaintext out of range") from exc
    cells = np.frombuffer(raw, dtype=np.uint8).reshape(len(ms), k, slot_bytes)
    full = np.zeros((len(ms), k, 8), dtype=np.uint8)
    full[:, :, 8 - slot_bytes :] = cells
    return full.view(">u8").reshape(len(ms), k)[:, ::-1].astype(np.uint64).reshape(-1)


def encrypt_packed(
    public_key: PaillierPublicKey,
    x: Any,
    *,
    layout: PackingLayout,
    obfuscate: Callable[[int], list[Any]],
) -> PackedEncryptedArray:
    """Pack ``x`` (any shape) into ``ceil(size / k)`` plaintexts and encrypt each one."""
    shape = tuple(np.shape(x))
    u = _encode_offsets(x, layout)
    k = layout.slots(public_key)
    ms = _pack(u, k, layout.slot_bits // 8) if len(u) else []
    obfs = obfuscate(len(ms))
    n, nsq = public_key.n, public_key.nsquare
    cts = [(n * m + 1) * o % nsq for m, o in zip(ms, obfs, strict=True)]
    arr = np.empty(len(cts), dtype=object)
    arr[:] = cts
    return PackedEncryptedArray(public_key, arr, shape=shape, layout=layout, weight=1)


def unpack_plaintexts(ms: list[Any], packed: PackedEncryptedArray) -> npt.NDArray[np.float64]:
    """Slots of decrypted plaintexts back to floats: ``(u - W * 2^(w-1)) / 2^precision``."""
    layout = packed.layout
    k = layout.slots(packed.public_key)
    size = int(np.prod(packed.shape, dtype=np.int64))
    u = _unpack(ms, k, layout.slot_bits // 8)[:size]
    v = u.astype(np.int64) - np.int64(packed.weight * layout.offset)
    return np.ldexp(v.astype(np.float64), -layout.precision_bits).reshape(packed.shape)


class PackedEncryptedArray:
    """Ciphertexts each holding ``k`` fixed-point slots; see the module docstring for the layout."""

    __slots__ = ("_key", "_c", "_shape", "_layout", "_weight")
    __array_ufunc__ = None

    def __init__(
        self,
        public_key: PaillierPublicKey,
        ciphertexts: npt.NDArray[Any],
        *,
        shape: tuple[int, ...],
        layout: PackingLayout,
        weight: int,
    ) -> None:
        size = int(np.prod(shape, dtype=np.int64))
        if len(ciphertexts) != -(-size // layout.slots(public_key)):
            raise CryptoUsageError("ciphertext count does not match shape and layout")
        if not 0 <= weight <= layout.max_weight:
            raise CryptoUsageError(
                f"packed slots would overflow: weight {weight} > {layout.max_weight} "
                f"({layout.headroom_bits} bits of headroom)"
            )
        self._key = public_key
        self._c = ciphertexts
        self._shape = shape
        self._layout = layout
        self._weight = weight

    @property
    def public_key(self) -> PaillierPublicKey:
        return self._key

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def layout(self) -> PackingLayout:
        return self._layout

    @property
    def weight(self) -> int:
        """How many offset values each slot holds (1 after encryption)."""
        return self._weight

    @property
    def ciphertext_count(self) -> int:
        return len(self._c)

    def raw_ciphertexts(self) -> list[Any]:
        return list(self._c.tolist())

    def __repr__(self) -> str:
        return (
            f"PackedEncryptedArray(shape={self._shape}, ciphertexts={len(self._c)}, "
            f"slot_bits={self._layout.slot_bits}, weight={self._weight})"
        )

    def _like(self, cts: list[Any], weight: int) -> PackedEncryptedArray:
        arr = np.empty(len(cts), dtype=object)
        arr[:] = cts
        return PackedEncryptedArray(
            self._key, arr, shape=self._shape, layout=self._layout, weight=weight
        )

    @timed
    def __add__(self, other: Any) -> PackedEncryptedArray:
        """Slotwise sum with another packed array of the same key, shape and layout, or a plaintext."""
        nsq = self._key.nsquare
        if isinstance(other, PackedEncryptedArray):
            if other._key != self._key:
                raise CryptoUsageError("operands are encrypted under different keys")
            if other._shape != self._shape or other._layout != self._layout:
                raise CryptoUsageError("packed operands differ in shape or layout")
            cts = [a * b % nsq for a, b in zip(self._c.tolist(), other._c.tolist(), strict=True)]
            return self._like(cts, self._weight + other._weight)
        if hasattr(other, "raw_ciphertexts"):
            raise CryptoUsageError("cannot mix PackedEncryptedArray and EncryptedArray")
        if tuple(np.shape(other)) != self._shape:
            raise CryptoUsageError(f"shape mismatch: {np.shape(other)} vs {self._shape}")
        u = _encode_offsets(other, self._layout)
        ms = _pack(u, self._layout.slots(self._key), self._layout.slot_bits // 8) if len(u) else []
        n = self._key.n
        cts = [c * (n * m + 1) % nsq for c, m in zip(self._c.tolist(), ms, strict=True)]
        return self._like(cts, self._weight + 1)

    __radd__ = __add__

    @timed
    def __mul__(self, k: Any) -> PackedEncryptedArray:
        """``E(m)^k`` for a small integer ``k >= 0``: every slot times ``k``."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise CryptoUsageError("packed arrays multiply only by a non-negative integer scalar")
        k = int(k)
        if k < 0:
            raise CryptoUsageError("packed arrays cannot be multiplied by a negative scalar")
        weight = self._weight * k
        if weight > self._layout.max_weight:
            raise CryptoUsageError(
                f"packed slots would overflow: weight {weight} > {self._layout.max_weight}"
            )
        nsq = self._key.nsquare
        cts = [gmpy2.powmod(c, k, nsq) for c in self._c.tolist()]
        return self._like(cts, weight)

    __rmul__ = __mul__

    def to_bytes(self) -> bytes:
        """Versioned bytes (layout in :mod:`._serial`)."""
        lay = self._layout
        header = ARRAY_MAGIC + bytes([VERSION, KIND_PACKED]) + bytes.fromhex(self._key.fingerprint)
        meta = struct.pack(">HHHI", lay.slot_bits, lay.value_bits, lay.precision_bits, self._weight)
        count = struct.pack(">Q", len(self._c))
        body = ciphertexts_to_bytes(self.raw_ciphertexts(), self._key.ciphertext_bytes)
        return header + meta + shape_to_bytes(self._shape) + count + body

    @classmethod
    def from_bytes(cls, data: bytes, public_key: PaillierPublicKey) -> PackedEncryptedArray:
        """Inverse of :meth:`to_bytes`; bad, truncated or other-key bytes raise :class:`InvalidCiphertext`."""
        reader = Reader(data, what="packed Paillier ciphertexts")
        if (
            reader.take(4) != ARRAY_MAGIC
            or reader.uint("B") != VERSION
            or reader.uint("B") != KIND_PACKED
        ):
            raise reader.fail("wrong magic, version or kind")
        if reader.take(32) != bytes.fromhex(public_key.fingerprint):
            raise reader.fail("made under another public key")
        slot_bits, value_bits, precision_bits, weight = reader.unpack("HHHI")
        shape = reader.shape()
        count = reader.uint("Q")
        try:
            layout = PackingLayout(
                slot_bits=slot_bits, value_bits=value_bits, precision_bits=precision_bits
            )
            expected = -(-int(np.prod(shape, dtype=object)) // layout.slots(public_key))
        except CryptoUsageError as exc:
            raise reader.fail("bad layout") from exc
        if count != expected or weight > layout.max_weight:
            raise reader.fail("count or weight does not match")
        if count * public_key.ciphertext_bytes != reader.remaining():
            raise reader.fail("wrong length")
        cts = ciphertexts_from_bytes(
            reader.rest(), count=count, width=public_key.ciphertext_bytes, n=public_key.n
        )
        return cls(public_key, cts, shape=shape, layout=layout, weight=weight)
