"""Paillier with several signed fixed-point values per ciphertext (SIMD packing) for split NN.

A *column-packed* matrix ``X`` (``rows x cols``) holds, for every column ``c`` and block ``r``,
one ciphertext of the packed plaintext

    M[c, r] = sum_{j < k} v[r k + j, c] * 2^(j s)        (signed integer, |M| < 2^(k s - 1))

with ``v = round(x * 2^scale)``, ``s = slot_bits`` and ``k = floor((bits(n) - 2) / s)`` slots
(rows beyond ``rows`` are zero). Paillier's homomorphism (Paillier, EUROCRYPT 1999; ``g = n + 1``)
acts slot by slot as long as every slot value stays in ``(-2^(s-1), 2^(s-1))``:

* ``E(M1) E(M2) = E(M1 + M2)``: slotwise sum;
* ``prod_l E(M_l)^(w_l) = E(sum_l w_l M_l)``: every slot gets ``sum_l w_l v_l`` for one integer
  weight per ciphertext (negative weights are fine: no offsets, the decoding handles signs).

So ``X @ W`` (``W`` a ``cols x m`` plaintext) is, for each output column ``j`` and block ``r``,
``prod_l E(M[l, r])^(W[l, j])``: all rows of a block at once, with the same scalar exponents
(the SIMD trick: one multi-exponentiation per ``k`` rows). Decoding a plaintext ``m``: take the
signed ``M`` (``m - n`` when ``m > n / 2``), add ``O = sum_j 2^(s-1) 2^(j s)`` so that every slot
is in ``[0, 2^s)`` (no borrows), and read the slots with shifts; subtract ``2^(s-1)``.

Masked reveals: before a packed result goes to the key owner, the evaluator adds a mask per
slot, an integer uniform in ``[0, 2^(B + 40))`` where ``B`` bounds the slot's value (computed
from the public bounds below and the evaluator's own multiplier), and re-randomises every
ciphertext (DJN obfuscators). The revealed ``value + mask`` is within statistical distance
``2^-40`` of a value-independent distribution (40 bits of slack, as in hetero LR). The key owner
returns exact integers (it adds its own term at the same scale), so unmasking is exact.

Public bounds (checked; a value beyond one is an error, never a silent wrap): embeddings
``|h| < 2^EMBEDDING_BITS``, cut-layer gradients ``|delta| < 2^GRADIENT_BITS``, interactive
weights ``|W| < 2^WEIGHT_BITS``; everything is encoded with ``FRACTION_BITS`` fractional bits.
"""

from __future__ import annotations

from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto.paillier import EncryptedArray, PaillierPrivateKey, PaillierPublicKey
from crypto.random import RandomSource, resolve
from vfl.errors import VflError

__all__ = [
    "EMBEDDING_BITS",
    "FRACTION_BITS",
    "GRADIENT_BITS",
    "MASK_SLACK_BITS",
    "WEIGHT_BITS",
    "WIDTH_BITS",
    "BATCH_BITS",
    "SLOT_BITS",
    "PackedMatrix",
    "encode_fixed",
    "ints_from_wire",
    "ints_to_wire",
]

FloatArray = npt.NDArray[np.float64]

FRACTION_BITS = 24
EMBEDDING_BITS = 10
GRADIENT_BITS = 4
WEIGHT_BITS = 10
MASK_SLACK_BITS = 40
#: Largest sum length: the embedding width ``d`` and ``interactive_units`` (forward, input
#: gradient) and the batch size (weight gradient ``h^T delta``).
WIDTH_BITS = 10
BATCH_BITS = 16
#: One slot width for every packed matrix of the protocol: the largest product bound
#: (``|h W|`` over ``2^WIDTH_BITS`` terms, ``|h^T delta|`` over ``2^BATCH_BITS``) plus the mask.
SLOT_BITS = (
    max(
        EMBEDDING_BITS + WEIGHT_BITS + WIDTH_BITS,
        GRADIENT_BITS + WEIGHT_BITS + WIDTH_BITS,
        EMBEDDING_BITS + GRADIENT_BITS + BATCH_BITS,
    )
    + 2 * FRACTION_BITS
    + MASK_SLACK_BITS
    + 2
)


def encode_fixed(x: FloatArray, *, bits: int, what: str) -> npt.NDArray[np.int64]:
    """``round(x * 2^FRACTION_BITS)`` as int64, after checking ``|x| < 2^bits``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.size and not (np.all(np.isfinite(arr)) and float(np.max(np.abs(arr))) < 2.0**bits):
        raise VflError(f"{what} out of the packed Paillier range (|value| < 2^{bits})")
    out: npt.NDArray[np.int64] = np.rint(np.ldexp(arr, FRACTION_BITS)).astype(np.int64)
    return out


def ints_to_wire(values: list[int], shape: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Fixed-width big-endian two's-complement bytes: a ``rows x cols x width`` uint8 array."""
    width = max((abs(v).bit_length() for v in values), default=0) // 8 + 1
    raw = b"".join(v.to_bytes(width, "big", signed=True) for v in values)
    return np.frombuffer(raw, dtype=np.uint8).reshape(*shape, width).copy()


def ints_from_wire(data: Any, shape: tuple[int, int]) -> list[int]:
    """Inverse of :func:`ints_to_wire`; checks the shape."""
    arr = np.asarray(data)
    if arr.dtype != np.uint8 or arr.ndim != 3 or tuple(arr.shape[:2]) != shape:
        raise VflError(f"peer sent a malformed integer reveal (expected {shape})")
    width = int(arr.shape[2])
    raw = np.ascontiguousarray(arr).tobytes()
    return [
        int.from_bytes(raw[i : i + width], "big", signed=True) for i in range(0, len(raw), width)
    ]


class PackedMatrix:
    """A column-packed encrypted ``rows x cols`` matrix (see the module docstring).

    ``cts[c][r]`` is the ciphertext of column ``c``, block ``r``; ``scale`` the fixed-point scale
    of the slots; ``value_bits`` a bound ``|slot| < 2^value_bits`` before any mask.
    """

    def __init__(
        self,
        key: PaillierPublicKey,
        cts: npt.NDArray[Any],
        *,
        rows: int,
        slot_bits: int,
        scale: int,
        value_bits: int,
    ) -> None:
        self.key = key
        self.slot_bits = slot_bits
        self.slots = (key.bits - 2) // slot_bits
        if self.slots < 1:
            raise VflError("Paillier key too small for one packed slot")
        if value_bits + 2 > slot_bits:
            raise VflError("packed values would overflow their slots")
        self.rows = rows
        self.cts = cts
        self.scale = scale
        self.value_bits = value_bits
        if cts.ndim != 2 or cts.shape[1] != self.blocks(rows):
            raise VflError(f"packed matrix has {cts.shape} ciphertexts for {rows} rows")

    def blocks(self, rows: int) -> int:
        return -(-rows // self.slots)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, int(self.cts.shape[0]))

    # -- encryption --------------------------------------------------------------------------
    @classmethod
    def encrypt(
        cls,
        key: PaillierPublicKey,
        x: FloatArray,
        *,
        bits: int,
        slot_bits: int,
        rng: RandomSource | None,
        what: str,
        processes: int | None = None,
    ) -> PackedMatrix:
        """Column-pack ``x`` (``|x| < 2^bits``) at scale ``FRACTION_BITS``; DJN obfuscators."""
        ints = encode_fixed(x, bits=bits, what=what)
        rows, cols = ints.shape
        slots = (key.bits - 2) // slot_bits
        plains = _pack_columns(ints, slots=slots, slot_bits=slot_bits, n=int(key.n))
        obfs = key.raw_obfuscators(plains.size, rng=rng, obfuscator="djn", processes=processes)
        n, nsq = key.n, key.nsquare
        flat = [
            (n * m + 1) * o % nsq for m, o in zip(plains.reshape(-1).tolist(), obfs, strict=True)
        ]
        cts = np.empty(len(flat), dtype=object)
        cts[:] = flat
        return cls(
            key,
            cts.reshape(plains.shape),
            rows=rows,
            slot_bits=slot_bits,
            scale=FRACTION_BITS,
            value_bits=bits + FRACTION_BITS,
        )

    # -- wire --------------------------------------------------------------------------------
    def to_wire(self) -> EncryptedArray:
        """The ciphertexts as an ``EncryptedArray`` (``cols x blocks``) for the channel's codec.

        Its entries are the packed integers ``M`` (scale 0, ``|M| < 2^(k s - 1)``, a true bound).
        """
        bound = 1 << (self.slots * self.slot_bits - 1)
        return EncryptedArray(self.key, self.cts, scale=0, bound=bound)

    @classmethod
    def from_wire(
        cls,
        wire: Any,
        key: PaillierPublicKey,
        *,
        rows: int,
        cols: int,
        slot_bits: int,
        scale: int,
        value_bits: int,
    ) -> PackedMatrix:
        """Check and wrap what a peer sent (its key, ``cols x blocks`` shape)."""
        if not isinstance(wire, EncryptedArray) or wire.public_key != key:
            raise VflError("peer sent no packed Paillier ciphertexts under the expected key")
        cts = np.empty(wire.size, dtype=object)
        cts[:] = wire.raw_ciphertexts()
        slots = (key.bits - 2) // slot_bits
        if wire.shape != (cols, -(-rows // max(slots, 1))):
            raise VflError(f"peer sent packed ciphertexts of shape {wire.shape}")
        return cls(
            key,
            cts.reshape(wire.shape),
            rows=rows,
            slot_bits=slot_bits,
            scale=scale,
            value_bits=value_bits,
        )

    # -- evaluation --------------------------------------------------------------------------
    def matmul(self, w: FloatArray, *, bits: int, processes: int | None = None) -> PackedMatrix:
        """``self @ w`` for a plaintext ``cols x m`` matrix ``|w| < 2^bits`` (module docstring).

        Output slot bound: ``2^value_bits * max_j sum_l |w_int[l, j]|`` at scale
        ``scale + FRACTION_BITS``.
        """
        ints = encode_fixed(w, bits=bits, what="interactive-layer multiplier")
        cols, m = ints.shape
        if cols != self.cts.shape[0]:
            raise VflError(f"packed matmul shape mismatch: {self.shape} @ {ints.shape}")
        col_sums = np.abs(ints).astype(object).sum(axis=0) if ints.size else np.zeros(1, object)
        growth = max(int(v) for v in np.atleast_1d(col_sums).tolist()) if m else 0
        value_bits = self.value_bits + max(growth, 1).bit_length()
        if value_bits + 2 > self.slot_bits:
            raise VflError("packed matmul would overflow its slots: weights too large")
        if cols < _STRAUS_BELOW:
            cts = _straus(self.cts, ints, self.key.nsquare)
        else:
            # out[j, r] = prod_l cts[l, r]^(ints[l, j]) by EncryptedArray's multi-exponentiation
            # (the bucket method), used on the packed integers as plain exponents: its own bound
            # bookkeeping does not apply to packed values (this class tracks the slots).
            carrier = EncryptedArray(self.key, self.cts, scale=0, bound=1)
            out = carrier.rmatmul(np.ascontiguousarray(ints.T), processes=processes)
            cts = np.empty(out.size, dtype=object)
            cts[:] = out.raw_ciphertexts()
        return PackedMatrix(
            self.key,
            cts.reshape(m, -1),
            rows=self.rows,
            slot_bits=self.slot_bits,
            scale=self.scale + FRACTION_BITS,
            value_bits=value_bits,
        )

    def mask(
        self, *, rng: RandomSource | None, processes: int | None = None
    ) -> tuple[PackedMatrix, list[int]]:
        """Add a uniform ``[0, 2^(value_bits + 40))`` mask to every slot and re-randomise.

        Returns the masked matrix (to send) and the masks in row-major ``rows x cols`` order.
        """
        rows, cols = self.shape
        width = self.value_bits + MASK_SLACK_BITS
        source = resolve(rng)
        masks = [source.randbelow(1 << width) for _ in range(rows * cols)]
        grid = np.zeros((self.blocks(rows) * self.slots, cols), dtype=object)
        grid[:rows] = np.asarray(masks, dtype=object).reshape(rows, cols)
        plains = _pack_columns(grid, slots=self.slots, slot_bits=self.slot_bits, n=int(self.key.n))
        obfs = self.key.raw_obfuscators(plains.size, rng=rng, obfuscator="djn", processes=processes)
        n, nsq = self.key.n, self.key.nsquare
        flat = [
            c * (n * m + 1) % nsq * o % nsq
            for c, m, o in zip(
                self.cts.reshape(-1).tolist(), plains.reshape(-1).tolist(), obfs, strict=True
            )
        ]
        cts = np.empty(len(flat), dtype=object)
        cts[:] = flat
        masked = PackedMatrix(
            self.key,
            cts.reshape(self.cts.shape),
            rows=rows,
            slot_bits=self.slot_bits,
            scale=self.scale,
            value_bits=width + 1,
        )
        return masked, masks

    # -- decryption --------------------------------------------------------------------------
    def decrypt_ints(
        self, private_key: PaillierPrivateKey, *, processes: int | None = None
    ) -> list[int]:
        """Exact slot integers, row-major ``rows x cols`` (one CRT decryption per ciphertext)."""
        if private_key.public_key != self.key:
            raise VflError("packed ciphertexts under another Paillier key")
        cols, blocks = self.cts.shape
        ms = private_key.raw_decrypt_many(self.cts.reshape(-1).tolist(), processes=processes)
        n, half = int(self.key.n), int(self.key.n) // 2
        s, k = self.slot_bits, self.slots
        offset = sum(1 << (s - 1 + j * s) for j in range(k))
        top, mask = 1 << (s - 1), (1 << s) - 1
        grid = np.empty((cols, blocks * k), dtype=object)
        for idx, m in enumerate(ms):
            value = int(m)
            value = value - n if value > half else value
            value += offset
            if value < 0 or value >> (k * s):
                raise VflError("packed plaintext out of range")
            c, r = divmod(idx, blocks)
            grid[c, r * k : (r + 1) * k] = [((value >> (j * s)) & mask) - top for j in range(k)]
        return [int(v) for v in grid[:, : self.rows].T.reshape(-1).tolist()]


_STRAUS_BELOW = 16
_WINDOW = 4


def _straus(cts: npt.NDArray[Any], ints: npt.NDArray[np.int64], nsq: Any) -> npt.NDArray[Any]:
    """``out[j, r] = prod_l cts[k, r]^(ints[l, j]) mod n^2`` for few bases ``k`` (Straus 1964).

    Per block ``r``: a table ``b^d`` (``d < 2^w``, ``w = 4``) of every base and of its inverse
    (for negative exponents), then for each output one shared chain of squarings over the
    ``w``-bit windows of all exponents: about ``bits + cols * bits / w`` multiplications per
    output instead of ``cols * 1.3 bits`` for one exponentiation per term.
    """
    cols, blocks = cts.shape
    m = ints.shape[1]
    mags = np.abs(ints)
    bits = int(mags.max()).bit_length() if mags.size else 0
    windows = -(-bits // _WINDOW)
    digit_mask = (1 << _WINDOW) - 1
    digits = [
        [
            [(int(mags[k, j]) >> (_WINDOW * w)) & digit_mask for w in range(windows)]
            for j in range(m)
        ]
        for k in range(cols)
    ]
    negative = (ints < 0).tolist()
    need_inverse = [any(row) for row in negative]
    out = np.empty((m, blocks), dtype=object)
    shift = 1 << _WINDOW
    for r in range(blocks):
        tables = []
        for k in range(cols):
            pos = _powers(gmpy2.mpz(cts[k, r]), nsq)
            neg = _powers(gmpy2.invert(cts[k, r], nsq), nsq) if need_inverse[k] else pos
            tables.append((pos, neg))
        for j in range(m):
            acc = gmpy2.mpz(1)
            for w in range(windows - 1, -1, -1):
                if w != windows - 1:
                    acc = gmpy2.powmod(acc, shift, nsq)
                for k in range(cols):
                    d = digits[k][j][w]
                    if d:
                        acc = acc * tables[k][1 if negative[k][j] else 0][d] % nsq
            out[j, r] = acc
    return out


def _powers(base: Any, nsq: Any) -> list[Any]:
    row = [gmpy2.mpz(1), base]
    for _ in range(2, 1 << _WINDOW):
        row.append(row[-1] * base % nsq)
    return row


def _pack_columns(
    ints: npt.NDArray[Any], *, slots: int, slot_bits: int, n: int
) -> npt.NDArray[Any]:
    """``M[c, r] = sum_j ints[r k + j, c] 2^(j s) mod n`` for a ``rows x cols`` integer array."""
    rows, cols = ints.shape
    blocks = -(-rows // slots)
    out = np.empty((cols, blocks), dtype=object)
    values = ints.astype(object) if ints.dtype != object else ints
    for c in range(cols):
        column = [int(v) for v in values[:, c].tolist()]
        for r in range(blocks):
            acc = 0
            for v in reversed(column[r * slots : (r + 1) * slots]):
                acc = (acc << slot_bits) + v
            out[c, r] = acc % n
    return out
