"""Gradient schemes: how ``(g, h)`` reach the feature parties and how per-bin sums come back.

Paillier (Paillier, EUROCRYPT 1999, ``g = n + 1``): the label party packs both values of a row
into one plaintext with *public, fixed* parameters (nothing data-dependent on the wire)::

    M = round(g * 2^F) * 2^S + round(h * 2^F)        (signed; sent as M mod n)

``F = FRACTION_BITS``, ``S`` the slot width of the :class:`Layout`. A feature party multiplies the
ciphertexts of the rows in each bin: ``prod E(M_i) = E(sum M_i) = E(G_bin * 2^S + H_bin)``. The
low slot never carries into the high one while ``|H_bin| < 2^(S-1)``, which holds for
``|g|, |h| < 2^b`` and fewer than ``2^r`` rows with ``S = b + F + r + 2``. ``b`` and ``r`` are
public: ``b = 1`` for the logistic and softmax losses (``|g| <= 1``, ``h <= 1/2``), ``b = 8``
for regression (standardised targets), ``r`` the bit length of the training row count that
both parties already know (the setup message). The key
owner decodes a centred low slot and a signed high slot, so negative gradients need no offset
and no per-bin row count (which would reveal the feature's distribution). Histograms are built
as numpy object arrays: rows sorted by ``feature * bins + bin`` and one ``reduceat`` of modular
products, never a Python loop over rows. Every histogram ciphertext is re-randomised (a fresh
obfuscator ``x``, ``c * x mod n^2``) before it leaves the feature party, empty bins included
(``E(0) = x``). On the wire a ciphertext is ``ciphertext_bytes`` fixed-width big-endian bytes.

Before sending, a feature party packs ``P = floor((bits(n) - 1) / (2 S))`` bin sums into one
ciphertext by Horner's rule, ``C = prod_j c_j^(2^(2 S j))`` (``2 S`` squarings per bin, far
cheaper than one CRT decryption), so the label party decrypts ``1 / P`` as many ciphertexts;
each bin sum ``|G 2^S + H| < 2^(2 S - 1)`` is read back as a centred slot.

Plain (the baseline, ``crypto.scheme = "plain"``): the same messages with float64 values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto.paillier import PaillierPrivateKey, PaillierPublicKey
from crypto.random import RandomSource
from vfl.errors import VflError
from vfl.secureboost._config import Objective

__all__ = [
    "FRACTION_BITS",
    "Layout",
    "encrypt_gradients",
    "decrypt_histograms",
    "pack_bins",
    "encrypted_histograms",
    "plain_histograms",
    "rerandomise",
    "ciphertexts_to_wire",
    "ciphertexts_from_wire",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

FRACTION_BITS = 20
MAX_ROW_BITS = 24


@dataclass(frozen=True)
class Layout:
    """Public slot layout: ``|g|, |h| < 2^gradient_bits``, fewer than ``2^row_bits`` rows."""

    gradient_bits: int
    row_bits: int

    @classmethod
    def for_job(cls, objective: Objective, rows: int) -> Layout:
        """From public facts only: the objective's gradient bound and the training row count."""
        if rows >= 1 << MAX_ROW_BITS:
            raise VflError(f"more than 2^{MAX_ROW_BITS} rows: the histogram slots could overflow")
        bounded = objective in (Objective.BINARY, Objective.MULTICLASS)
        return cls(gradient_bits=1 if bounded else 8, row_bits=max(1, rows.bit_length()))

    @property
    def slot_bits(self) -> int:
        return self.gradient_bits + FRACTION_BITS + self.row_bits + 2

    @property
    def bin_bits(self) -> int:
        return 2 * self.slot_bits

    def per_ciphertext(self, public_key: PaillierPublicKey) -> int:
        """``P``: bin sums packed into one returned ciphertext (the value stays below ``n/2``)."""
        return max(1, (public_key.bits - 1) // self.bin_bits)


def pack_bins(
    public_key: PaillierPublicKey, cts: npt.NDArray[Any], layout: Layout
) -> npt.NDArray[Any]:
    """``ceil(len / P)`` ciphertexts of ``sum_j M_j 2^(2 S j)`` (Horner: square, multiply)."""
    flat = cts.reshape(-1).tolist()
    per = layout.per_ciphertext(public_key)
    nsq = public_key.nsquare
    shift = gmpy2.mpz(1) << layout.bin_bits
    out = []
    for start in range(0, len(flat), per):
        chunk = flat[start : start + per]
        acc = chunk[-1]
        for c in reversed(chunk[:-1]):
            acc = gmpy2.powmod(acc, shift, nsq) * c % nsq
        out.append(acc)
    arr = np.empty(len(out), dtype=object)
    arr[:] = out
    return arr


def _fixed(x: FloatArray, what: str, bits: int) -> list[int]:
    if not np.all(np.isfinite(x)) or (x.size and np.max(np.abs(x)) >= 2.0**bits):
        raise VflError(f"{what} outside the public bound |x| < 2^{bits}")
    return [int(v) for v in np.rint(np.ldexp(x, FRACTION_BITS)).astype(np.int64).tolist()]


def encrypt_gradients(
    private_key: PaillierPrivateKey,
    g: FloatArray,
    h: FloatArray,
    *,
    layout: Layout,
    obfuscator: str,
    rng: RandomSource | None = None,
    processes: int | None = None,
    obfuscators: list[Any] | None = None,
) -> npt.NDArray[Any]:
    """One ciphertext of ``round(g 2^F) 2^S + round(h 2^F)`` per row (object array of ``mpz``).

    ``obfuscators`` (one per row, each used once, e.g. from an ``ObfuscatorPool`` filled ahead
    of time) or fresh ones: the key owner's CRT obfuscators for ``standard`` (same
    distribution, faster), the public DJN fixed-base ones for ``djn``.
    """
    if len(g) >= 1 << layout.row_bits:
        raise VflError(f"more than 2^{layout.row_bits} rows: the layout's slots could overflow")
    pub = private_key.public_key
    n, nsq = gmpy2.mpz(pub.n), pub.nsquare
    gi = _fixed(g, "gradient", layout.gradient_bits)
    hi = _fixed(h, "hessian", layout.gradient_bits)
    shift = layout.slot_bits
    if obfuscators is not None:
        if len(obfuscators) != len(gi):
            raise VflError("one obfuscator per row is needed")
        obfs = obfuscators
    elif obfuscator == "standard":
        obfs = private_key.raw_obfuscators(len(gi), rng=rng, processes=processes)
    else:
        obfs = pub.raw_obfuscators(len(gi), rng=rng, obfuscator=obfuscator, processes=processes)
    out = np.empty(len(gi), dtype=object)
    out[:] = [
        (n * (((a << shift) + b) % n) + 1) * x % nsq for a, b, x in zip(gi, hi, obfs, strict=True)
    ]
    return out


def decrypt_histograms(
    private_key: PaillierPrivateKey,
    cts: Sequence[Any],
    count: int,
    layout: Layout,
    *,
    processes: int | None = None,
) -> FloatArray:
    """``(G, H)`` of ``count`` bins (``count x 2`` floats) from :func:`pack_bins` ciphertexts.

    CRT decryption, then ``P`` centred ``2 S``-bit slots per plaintext, each split into a signed
    high slot ``G`` and a centred low slot ``H``.
    """
    per = layout.per_ciphertext(private_key.public_key)
    slot_bits, bin_bits = layout.slot_bits, layout.bin_bits
    if len(cts) != -(-count // per):
        raise VflError("peer sent the wrong number of histogram ciphertexts")
    n = int(private_key.public_key.n)
    half = n // 2
    ms = private_key.raw_decrypt_many(list(cts), processes=processes)
    gs, hs = [], []
    for i, m in enumerate(ms):
        v = int(m)
        if v > half:
            v -= n
        for _ in range(min(per, count - i * per)):
            slot = _centred(v, bin_bits)
            v = (v - slot) >> bin_bits
            hv = _centred(slot, slot_bits)
            gs.append((slot - hv) >> slot_bits)
            hs.append(hv)
    out = np.empty((count, 2), dtype=np.float64)
    out[:, 0] = np.ldexp(np.asarray(gs, dtype=np.float64), -FRACTION_BITS)
    out[:, 1] = np.ldexp(np.asarray(hs, dtype=np.float64), -FRACTION_BITS)
    return out


def _centred(v: int, bits: int) -> int:
    """``v mod 2^bits`` in ``[-2^(bits-1), 2^(bits-1))``."""
    low = v & ((1 << bits) - 1)
    return low - (1 << bits) if low >> (bits - 1) else low


def _keys(bins: npt.NDArray[np.int32], nbins: int) -> IntArray:
    """``feature * nbins + bin`` for every (row, feature), row-major."""
    features = bins.shape[1]
    return (bins.astype(np.int64) + np.arange(features, dtype=np.int64) * nbins).reshape(-1)


def encrypted_histograms(
    cts: npt.NDArray[Any], bins: npt.NDArray[np.int32], nbins: int, nsquare: Any
) -> npt.NDArray[Any]:
    """``features x nbins`` products of the ciphertexts of each bin's rows (``1 = E(0)`` if empty).

    ``cts`` holds one ciphertext per row of ``bins`` (rows x features of bin indices).
    """
    features = bins.shape[1]
    out = np.empty(features * nbins, dtype=object)
    out[:] = [gmpy2.mpz(1)] * out.size
    if len(cts) and features:
        keys = _keys(bins, nbins)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        sorted_cts = np.repeat(cts, features)[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        mulmod = np.frompyfunc(lambda a, b: a * b % nsquare, 2, 1)
        out[sorted_keys[starts]] = mulmod.reduceat(sorted_cts, starts)
    return out.reshape(features, nbins)


def plain_histograms(gh: FloatArray, bins: npt.NDArray[np.int32], nbins: int) -> FloatArray:
    """``features x nbins x 2`` sums of ``(g, h)`` per bin (the plain scheme and the label's own)."""
    features = bins.shape[1]
    keys = _keys(bins, nbins)
    size = features * nbins
    out = np.empty((size, 2))
    for j in range(2):
        out[:, j] = np.bincount(keys, weights=np.repeat(gh[:, j], features), minlength=size)
    return out.reshape(features, nbins, 2)


def rerandomise(
    public_key: PaillierPublicKey,
    cts: npt.NDArray[Any],
    *,
    obfuscator: str,
    rng: RandomSource | None = None,
    processes: int | None = None,
) -> npt.NDArray[Any]:
    """``c * x mod n^2`` with a fresh obfuscator ``x`` for every ciphertext (same shape)."""
    flat = cts.reshape(-1)
    obfs = public_key.raw_obfuscators(
        flat.size, rng=rng, obfuscator=obfuscator, processes=processes
    )
    nsq = public_key.nsquare
    out = np.empty(flat.size, dtype=object)
    out[:] = [c * x % nsq for c, x in zip(flat.tolist(), obfs, strict=True)]
    return out.reshape(cts.shape)


def ciphertexts_to_wire(
    public_key: PaillierPublicKey, cts: npt.NDArray[Any]
) -> npt.NDArray[np.uint8]:
    """Fixed-width big-endian bytes: shape ``cts.shape + (ciphertext_bytes,)``."""
    width = public_key.ciphertext_bytes
    raw = b"".join(int(c).to_bytes(width, "big") for c in cts.reshape(-1).tolist())
    return np.frombuffer(raw, dtype=np.uint8).reshape(*cts.shape, width).copy()


def ciphertexts_from_wire(
    public_key: PaillierPublicKey, data: Any, shape: tuple[int, ...], what: str
) -> npt.NDArray[Any]:
    """Inverse of :func:`ciphertexts_to_wire`; checks dtype, shape and ``0 < c < n^2``."""
    width = public_key.ciphertext_bytes
    arr = np.asarray(data)
    if not isinstance(data, np.ndarray) or arr.dtype != np.uint8 or arr.shape != (*shape, width):
        raise VflError(f"peer sent malformed {what} (expected {shape} ciphertexts)")
    raw = np.ascontiguousarray(arr).reshape(-1, width)
    nsq = public_key.nsquare
    values = [gmpy2.mpz(int.from_bytes(row.tobytes(), "big")) for row in raw]
    if any(not 0 < v < nsq for v in values):
        raise VflError(f"peer sent {what} with a ciphertext out of range")
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)
