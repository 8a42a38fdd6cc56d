"""Secure aggregation by pairwise masking: the aggregator learns the (weighted) sum of the
round's updates, not any one of them.

This is the pairwise-mask core of Bonawitz et al., "Practical Secure Aggregation for
Privacy-Preserving Machine Learning" (CCS 2017, Sec. 4, "masking with one-time pads"), without
its dropout recovery (no Shamir shares, no double masking): if any client that was given the
round's participant list does not answer, the round's sum cannot be unmasked and the round is
skipped. Honest-but-curious aggregator; clients do not collude with it.

Each client ``i`` has an X25519 key pair (:class:`crypto.keys.AgreementKey`). For each other
participant ``j`` of round ``r``, both derive the same seed
``s_ij = HKDF-SHA256(X25519(a_i, A_j), info = "vfl/secagg/v1" | job | r | min(i,j) | max(i,j))``
and expand it with SHAKE-256 to a mask ``m_ij`` in ``Z_{2^64}^d``. Client ``i`` sends::

    y_i = enc(n_i * u_i) + sum_{j > i} m_ij - sum_{j < i} m_ij      (mod 2^64)

where ``enc(v) = round(v * 2^F) mod 2^64`` (two's complement fixed point, ``F`` fractional bits)
and ``n_i`` is the client's sample count (sent in clear: it is already in the profile). The masks
cancel in ``sum_i y_i``, so ``FedAvg = dec(sum_i y_i) / sum_i n_i``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from crypto.keys import AgreementKey
from vfl.errors import VflError

__all__ = [
    "FRACTION_BITS",
    "encode_fixed",
    "decode_fixed",
    "pair_mask",
    "mask_update",
    "unmask_sum",
]

FRACTION_BITS = 24
_INFO = b"vfl/secagg/v1"
_LIMIT = 2.0**62


def encode_fixed(v: np.ndarray, *, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """``round(v * 2^F)`` as two's complement ``uint64``; refuses values that could overflow.

    >>> decode_fixed(encode_fixed(np.array([-1.5, 0.25])))
    array([-1.5 ,  0.25])
    """
    scaled = np.rint(np.asarray(v, dtype=np.float64) * 2.0**fraction_bits)
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= _LIMIT):
        raise VflError("update is non-finite or too large for fixed-point secure aggregation")
    return scaled.astype(np.int64).view(np.uint64)


def decode_fixed(u: np.ndarray, *, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """Inverse of :func:`encode_fixed` (reads ``uint64`` as signed)."""
    out: np.ndarray = np.asarray(u, dtype=np.uint64).view(np.int64).astype(np.float64)
    return out / 2.0**fraction_bits


def pair_mask(seed: bytes, size: int) -> np.ndarray:
    """``size`` uniform ``uint64`` values: SHAKE-256(seed) read as little-endian words."""
    return np.frombuffer(hashlib.shake_256(seed).digest(8 * size), dtype="<u8").astype(np.uint64)


def _seed(key: AgreementKey, peer_public: bytes, *, job: str, round: int, a: str, b: str) -> bytes:
    lo, hi = sorted((a, b))
    info = b"|".join([_INFO, job.encode(), str(round).encode(), lo.encode(), hi.encode()])
    return key.exchange(peer_public, info=info)


def mask_update(
    weighted: np.ndarray,
    *,
    me: str,
    key: AgreementKey,
    peers: Mapping[str, bytes],
    job: str,
    round: int,
) -> np.ndarray:
    """``enc(weighted) + sum_{j > me} m_ij - sum_{j < me} m_ij`` over ``peers`` (mod 2^64).

    ``peers`` maps every *other* participant of the round to its X25519 public key.
    """
    y = encode_fixed(weighted).ravel().copy()
    for peer in sorted(peers):
        if peer == me:
            continue
        m = pair_mask(_seed(key, peers[peer], job=job, round=round, a=me, b=peer), y.size)
        with np.errstate(over="ignore"):
            y = y + m if peer > me else y - m
    return y


def unmask_sum(masked: Mapping[str, np.ndarray]) -> np.ndarray:
    """``dec(sum_i y_i mod 2^64)``: the sum of the weighted updates once every mask cancelled."""
    if not masked:
        raise VflError("no masked updates to add")
    total = np.zeros(next(iter(masked.values())).shape, dtype=np.uint64)
    for y in masked.values():
        with np.errstate(over="ignore"):
            total = total + np.asarray(y, dtype=np.uint64)
    return decode_fixed(total)
