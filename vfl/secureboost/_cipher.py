"""Gradient schemes: how ``(g, h)`` reach the feature parties and how per-bin sums come back.

Paillier (Paillier, EUROCRYPT 1999, ``g = n + 1``): the label party packs both values of a row
into one plaintext with *public, fixed* parameters (nothing data-dependent on the wire)::

    M = round(g * 2^F) * 2^S + round(h * 2^F)        (signed; sent as M mod n)

``F = FRACTION_BITS``, ``S = SLOT_BITS``. A feature party multiplies the ciphertexts of the rows
in each bin: ``prod E(M_i) = E(sum M_i) = E(G_bin * 2^S + H_bin)``. The low slot never carries
into the high one while ``|H_bin| < 2^(S-1)``, which holds for ``|g|, |h| < 2^GRADIENT_BITS`` and
at most ``2^ROW_BITS`` rows (``S >= GRADIENT_BITS + FRACTION_BITS + ROW_BITS + 1``); the key
owner decodes a centred low slot and a signed high slot, so negative gradients need no offset
and no per-bin row count (which would reveal the feature's distribution). Histograms are built
as numpy object arrays: rows sorted by ``feature * bins + bin`` and one ``reduceat`` of modular
products, never a Python loop over rows. Every histogram ciphertext is re-randomised (a fresh
obfuscator ``x``, ``c * x mod n^2``) before it leaves the feature party, empty bins included
(``E(0) = x``). On the wire a ciphertext is ``ciphertext_bytes`` fixed-width big-endian bytes.

Before sending, a feature party packs ``P = floor((bits(n) - 1) / BIN_BITS)`` bin sums into one
ciphertext by Horner's rule, ``C = prod_j c_j^(2^(j BIN_BITS))`` (``BIN_BITS - 1`` squarings per
bin, far cheaper than one CRT decryption), so the label party decrypts ``1 / P`` as many
ciphertexts; each bin sum ``|G 2^S + H| < 2^(BIN_BITS - 1)`` is read back as a centred slot.

Plain (the baseline, ``crypto.scheme = "plain"``): the same messages with float64 values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto.paillier import PaillierPrivateKey, PaillierPublicKey
from crypto.random import RandomSource
from vfl.errors import VflError

__all__ = [
    "FRACTION_BITS",
    "GRADIENT_BITS",
    "ROW_BITS",
    "SLOT_BITS",
    "encrypt_gradients",
    "decrypt_histograms",
    "bins_per_ciphertext",
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
GRADIENT_BITS = 8
ROW_BITS = 24
SLOT_BITS = 64
BIN_BITS = 2 * SLOT_BITS
assert SLOT_BITS >= GRADIENT_BITS + FRACTION_BITS + ROW_BITS + 1


def bins_per_ciphertext(public_key: PaillierPublicKey) -> int:
    """``P``: bin sums packed into one returned ciphertext (the packed value stays below ``n/2``)."""
    return max(1, (public_key.bits - 1) // BIN_BITS)


def pack_bins(public_key: PaillierPublicKey, cts: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``ceil(len / P)`` ciphertexts of ``sum_j M_j 2^(j BIN_BITS)`` (Horner: square, multiply)."""
    flat = cts.reshape(-1).tolist()
    per = bins_per_ciphertext(public_key)
    nsq = public_key.nsquare
    shift = gmpy2.mpz(1) << BIN_BITS
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


def _fixed(x: FloatArray, what: str) -> list[int]:
    if not np.all(np.isfinite(x)) or (x.size and np.max(np.abs(x)) >= 2.0**GRADIENT_BITS):
        raise VflError(f"{what} outside the public bound |x| < 2^{GRADIENT_BITS}")
    return [int(v) for v in np.rint(np.ldexp(x, FRACTION_BITS)).astype(np.int64).tolist()]


def encrypt_gradients(
    private_key: PaillierPrivateKey,
    g: FloatArray,
    h: FloatArray,
    *,
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
    if len(g) >= 1 << ROW_BITS:
        raise VflError(f"more than 2^{ROW_BITS} rows: the histogram slots could overflow")
    pub = private_key.public_key
    n, nsq = gmpy2.mpz(pub.n), pub.nsquare
    gi, hi = _fixed(g, "gradient"), _fixed(h, "hessian")
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
        (n * (((a << SLOT_BITS) + b) % n) + 1) * x % nsq
        for a, b, x in zip(gi, hi, obfs, strict=True)
    ]
    return out


def decrypt_histograms(
    private_key: PaillierPrivateKey, cts: Sequence[Any], count: int, *, processes: int | None = None
) -> FloatArray:
    """``(G, H)`` of ``count`` bins (``count x 2`` floats) from :func:`pack_bins` ciphertexts.

    CRT decryption, then ``P`` centred ``BIN_BITS`` slots per plaintext, each split into a signed
    high slot ``G`` and a centred low slot ``H``.
    """
    per = bins_per_ciphertext(private_key.public_key)
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
            slot = _centred(v, BIN_BITS)
            v = (v - slot) >> BIN_BITS
            hv = _centred(slot, SLOT_BITS)
            gs.append((slot - hv) >> SLOT_BITS)
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
