"""Shamir's ``t``-of-``n`` secret sharing over the prime field ``GF(p)``, ``p = 2^521 - 1``.

Shamir, "How to share a secret", CACM 22(11), 1979. To share ``s`` the dealer draws a random
polynomial ``f(x) = s + a_1 x + ... + a_{t-1} x^{t-1}`` (``a_k`` uniform in ``GF(p)``) and gives
party ``i`` the point ``(x_i, f(x_i))`` with distinct non-zero ``x_i``. Any ``t`` points determine
``f`` and so ``s = f(0)`` by Lagrange interpolation,

    ``f(0) = sum_j y_j prod_{m != j} x_m / (x_m - x_j)   (mod p)``,

while any ``t - 1`` points are independent of ``s`` (information-theoretic hiding). ``p`` is the
Mersenne prime ``2^521 - 1`` so a 256-bit secret (a key or a seed) is one field element. Given
more than ``t`` points, :func:`reconstruct` also checks that they all lie on one polynomial of
degree ``< t``, so a corrupted share is detected instead of giving a wrong secret.

>>> from crypto.random import SeededRandom
>>> shares = split(42, threshold=2, xs=[1, 2, 3], rng=SeededRandom(0))
>>> reconstruct({x: shares[x] for x in (1, 3)}, threshold=2)
42
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crypto.random import RandomSource, resolve
from vfl.errors import VflError

__all__ = ["PRIME", "SHARE_BYTES", "ShamirError", "split", "reconstruct", "lagrange_at"]

PRIME = (1 << 521) - 1
SHARE_BYTES = 66
"""A field element as fixed-width big-endian bytes (``ceil(521 / 8)``)."""


class ShamirError(VflError):
    """Too few shares, inconsistent shares, or a bad sharing request."""


def _check_xs(xs: Iterable[int]) -> list[int]:
    out = [int(x) for x in xs]
    if len(set(out)) != len(out) or not all(0 < x < PRIME for x in out):
        raise ShamirError("share points must be distinct and in [1, p)")
    return out


def split(
    secret: int, *, threshold: int, xs: Iterable[int], rng: RandomSource | None = None
) -> dict[int, int]:
    """Shares ``{x_i: f(x_i)}`` of ``secret`` with a random degree ``threshold - 1`` polynomial."""
    points = _check_xs(xs)
    if not 1 <= threshold <= len(points):
        raise ShamirError(f"threshold {threshold} outside [1, {len(points)}]")
    if not 0 <= secret < PRIME:
        raise ShamirError("secret must be in [0, p)")
    source = resolve(rng)
    coeffs = [secret] + [source.randbelow(PRIME) for _ in range(threshold - 1)]
    shares: dict[int, int] = {}
    for x in points:
        acc = 0
        for c in reversed(coeffs):  # Horner
            acc = (acc * x + c) % PRIME
        shares[x] = acc
    return shares


def lagrange_at(points: Mapping[int, int], at: int) -> int:
    """``f(at)`` for the unique polynomial of degree ``< len(points)`` through ``points``."""
    xs = _check_xs(points)
    total = 0
    for j in xs:
        num, den = 1, 1
        for m in xs:
            if m != j:
                num = num * (at - m) % PRIME
                den = den * (j - m) % PRIME
        total = (total + points[j] * num * pow(den, -1, PRIME)) % PRIME
    return total


def reconstruct(shares: Mapping[int, int], *, threshold: int) -> int:
    """``f(0)`` from at least ``threshold`` shares; the extra shares must agree with the first
    ``threshold`` ones, else :class:`ShamirError` (never a wrong secret from a corrupt share)."""
    if threshold < 1:
        raise ShamirError(f"threshold must be >= 1, got {threshold}")
    if len(shares) < threshold:
        raise ShamirError(f"need {threshold} shares to reconstruct, got {len(shares)}")
    if not all(isinstance(y, int) and 0 <= y < PRIME for y in shares.values()):
        raise ShamirError("share values must be field elements in [0, p)")
    xs = sorted(shares)
    basis = {x: shares[x] for x in xs[:threshold]}
    for x in xs[threshold:]:
        if lagrange_at(basis, x) != shares[x]:
            raise ShamirError("shares are inconsistent (one was corrupted)")
    return lagrange_at(basis, 0)
