"""Exact discrete Laplace and discrete Gaussian samplers on integer arithmetic.

Why: textbook floating-point samplers (``-b * log(U)``, Box-Muller) leak the secret through the
least significant bits of the noisy output -- some doubles can only be produced from some inputs
(Mironov, "On significance of the least significant bits for differential privacy", CCS 2012).
Here noise is never produced by floating-point transcendental functions. Following Canonne, Kamath
and Steinke, "The Discrete Gaussian for Differential Privacy" (NeurIPS 2020, Algorithms 1-3), every
sample is drawn with exact rational arithmetic from uniform integers of a CSPRNG
(:class:`crypto.random.RandomSource`, the OS generator by default):

* ``Bernoulli(exp(-gamma))`` for rational ``gamma`` (Algorithm 1): for ``gamma in [0, 1]`` draw
  ``A_k ~ Bernoulli(gamma / k)`` for ``k = 1, 2, ...`` until one is 0 and return whether the
  stopping ``k`` is odd; for ``gamma > 1`` multiply ``floor(gamma)`` draws of
  ``Bernoulli(exp(-1))`` and one of ``Bernoulli(exp(-(gamma - floor(gamma))))``.
* discrete Laplace with scale ``t`` (Algorithm 2): ``P[Y = y] ~ exp(-|y| / t)``, from a uniform
  ``U < den``, a geometric ``V`` and a sign, with rejection.
* discrete Gaussian with variance parameter ``sigma^2`` (Algorithm 3): ``P[Y = y] ~
  exp(-y^2 / (2 sigma^2))``, by rejection from a discrete Laplace with ``t = floor(sigma) + 1``,
  accepting with probability ``exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))``.

Parameters given as floats are rounded *up* to the nearest multiple of ``2^-32`` (conservative:
never less noise) and from then on everything is exact rational arithmetic. The mechanisms in :mod:`vfl.privacy._mechanisms` scale the integer
noise onto a grid ``granularity * Z`` (the data are rounded onto the same grid first), so every
released value is an exact multiple of the granularity and carries no secret low-order bits.

The samplers run in Python (several microseconds per sample); a million-entry update takes
seconds. ``SeededRandom`` makes them reproducible in tests and is never secure.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from crypto.random import RandomSource, resolve

__all__ = [
    "bernoulli",
    "bernoulli_exp",
    "discrete_laplace",
    "discrete_gaussian",
    "discrete_laplace_array",
    "discrete_gaussian_array",
]

Rational = Fraction | int | float


_FLOAT_BITS = 32  # floats are rounded *up* onto the grid 2^-32 (see _fraction)


def _fraction(value: Rational, name: str) -> Fraction:
    """``value`` as an exact rational; a float is rounded up to a multiple of ``2^-32``.

    Rounding the scale or variance *up* is conservative (more noise, never less) and keeps the
    denominators small, so the integer arithmetic stays fast.
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
        frac = Fraction(math.ceil(value * 2**_FLOAT_BITS), 2**_FLOAT_BITS)
    else:
        frac = Fraction(value)
    if frac < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return frac


def bernoulli(p: Fraction, rng: RandomSource) -> bool:
    """``Bernoulli(p)`` for rational ``p in [0, 1]``: ``randbelow(den) < num``, exact."""
    if not 0 <= p <= 1:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return rng.randbelow(p.denominator) < p.numerator


def _bern_exp(num: int, den: int, rng: RandomSource) -> bool:
    """``Bernoulli(exp(-num/den))`` on integers only (Algorithm 1 of Canonne et al. 2020)."""
    whole, num = divmod(num, den)
    for _ in range(whole):  # Bernoulli(exp(-1)): A_k ~ Bernoulli(1/k) until one is 0
        k = 1
        while rng.randbelow(k) == 0:
            k += 1
        if k % 2 == 0:
            return False
    k = 1  # gamma = num/den in [0, 1): A_k ~ Bernoulli(gamma / k) = randbelow(den * k) < num
    while rng.randbelow(den * k) < num:
        k += 1
    return k % 2 == 1


def bernoulli_exp(gamma: Rational, rng: RandomSource | None = None) -> bool:
    """``Bernoulli(exp(-gamma))`` for rational ``gamma >= 0`` (Canonne et al. 2020, Algorithm 1)."""
    g = _fraction(gamma, "gamma")
    return _bern_exp(g.numerator, g.denominator, resolve(rng))


def _dlap(num: int, den: int, rng: RandomSource) -> int:
    """Discrete Laplace with scale ``num/den`` (Canonne et al. 2020, Algorithm 2, t=num, s=den)."""
    while True:
        u = rng.randbelow(num)
        if not _bern_exp(u, num, rng):
            continue
        v = 0
        while _bern_exp(1, 1, rng):
            v += 1
        y = (u + num * v) // den
        negative = rng.randbelow(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


def discrete_laplace(scale: Rational, rng: RandomSource | None = None) -> int:
    """One draw with ``P[Y = y] proportional to exp(-|y| / scale)`` (Canonne et al., Algorithm 2).

    With ``scale = t/s`` in lowest terms: ``U`` uniform below ``t``, accepted with probability
    ``exp(-U/t)``; ``V`` geometric with ``P[V = v] ~ exp(-v)``; ``Y = floor((U + t V) / s)``
    with a uniform sign, rejecting ``-0``.
    """
    t = _fraction(scale, "scale")
    if t == 0:
        raise ValueError("discrete Laplace scale must be positive")
    return _dlap(t.numerator, t.denominator, resolve(rng))


def _dgauss(a: int, b: int, rng: RandomSource) -> int:
    """Discrete Gaussian with ``sigma^2 = a/b`` (Algorithm 3), integers only.

    ``gamma = (|Y| - sigma^2/t)^2 / (2 sigma^2) = (|Y| t b - a)^2 / (2 a b t^2)``.
    """
    t = _isqrt_floor(Fraction(a, b)) + 1
    while True:
        y = _dlap(t, 1, rng)
        diff = abs(y) * t * b - a
        if _bern_exp(diff * diff, 2 * a * b * t * t, rng):
            return y


def discrete_gaussian(sigma_squared: Rational, rng: RandomSource | None = None) -> int:
    """One draw with ``P[Y = y] proportional to exp(-y^2 / (2 sigma^2))`` (Algorithm 3).

    ``t = floor(sigma) + 1``; ``Y ~ discrete Laplace(t)`` is accepted with probability
    ``exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))``.
    """
    s2 = _fraction(sigma_squared, "sigma_squared")
    if s2 == 0:
        return 0
    return _dgauss(s2.numerator, s2.denominator, resolve(rng))


def _isqrt_floor(value: Fraction) -> int:
    """``floor(sqrt(value))`` for a non-negative rational, exactly."""
    root = math.isqrt(value.numerator // value.denominator)
    while Fraction(root + 1) ** 2 <= value:
        root += 1
    while Fraction(root) ** 2 > value:
        root -= 1
    return root


def discrete_laplace_array(
    shape: tuple[int, ...], *, scale: Rational, rng: RandomSource | None = None
) -> np.ndarray:
    """An ``int64`` array of independent discrete Laplace draws."""
    source = resolve(rng)
    count = int(np.prod(shape, dtype=np.int64))
    t = _fraction(scale, "scale")
    if t == 0:
        raise ValueError("discrete Laplace scale must be positive")
    values = [_dlap(t.numerator, t.denominator, source) for _ in range(count)]
    return np.asarray(values, dtype=np.int64).reshape(shape)


def discrete_gaussian_array(
    shape: tuple[int, ...], *, sigma_squared: Rational, rng: RandomSource | None = None
) -> np.ndarray:
    """An ``int64`` array of independent discrete Gaussian draws."""
    source = resolve(rng)
    s2 = _fraction(sigma_squared, "sigma_squared")
    count = int(np.prod(shape, dtype=np.int64))
    if s2 == 0:
        return np.zeros(shape, dtype=np.int64)
    values = [_dgauss(s2.numerator, s2.denominator, source) for _ in range(count)]
    return np.asarray(values, dtype=np.int64).reshape(shape)
