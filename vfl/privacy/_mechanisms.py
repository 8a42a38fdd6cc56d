"""Gaussian and Laplace mechanisms with correct calibration, on an exact discrete sampler.

Calibration
-----------
* Laplace (Dwork, McSherry, Nissim, Smith 2006): ``epsilon``-DP for L1 sensitivity ``Delta`` with
  scale ``b = Delta / epsilon`` (:func:`laplace_scale`).
* Gaussian: the *analytic* Gaussian mechanism (Balle and Wang, "Improving the Gaussian Mechanism
  for Differential Privacy", ICML 2018, Theorem 8): ``N(0, sigma^2)`` is ``(epsilon, delta)``-DP
  for L2 sensitivity ``Delta`` iff

      Phi(Delta/(2 sigma) - epsilon sigma/Delta) - e^epsilon Phi(-Delta/(2 sigma) - epsilon sigma/Delta)
          <= delta,

  and :func:`gaussian_sigma` returns the smallest such ``sigma`` by bisection. (The textbook
  ``sigma = Delta sqrt(2 ln(1.25/delta)) / epsilon`` is valid only for ``epsilon < 1``.) For
  training over many steps use a noise multiplier and the RDP accountant instead.

Sampling (see :mod:`vfl.privacy._sampler`)
------------------------------------------
Noise is an integer from the exact discrete Gaussian / discrete Laplace sampler of Canonne,
Kamath and Steinke (2020), times a ``granularity`` ``g``; the input is first rounded to the
nearest multiple of ``g``, so the output lies exactly on the grid ``g * Z`` and has no secret
low-order bits (Mironov 2012). Rounding moves a vector by at most ``g sqrt(d) / 2`` in L2
(``g d / 2`` in L1), so two neighbouring inputs may differ by up to ``Delta + g sqrt(d)`` after
rounding: the helpers :func:`local_dp` and :func:`central_dp` add that margin to the sensitivity
before calibrating, so the accounted noise multiplier stays honest. The default granularity is
``sigma * 2^-20``, which makes the margin negligible (``< 1e-3 sigma`` for ``d <= 10^6``).
The discrete Gaussian with integer-vector shifts satisfies the same concentrated DP as the
continuous one (Canonne et al. 2020, Theorem 14); the RDP accountant uses the continuous bound.

``secure=False`` draws floating-point noise from numpy instead: much faster, but exposed to the
least-significant-bit attack; it warns with :class:`InsecureNoiseWarning`.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np

from crypto.random import RandomSource, resolve
from vfl.privacy._clipping import clip_l2
from vfl.privacy._rdp import _log_erfc
from vfl.privacy._sampler import bernoulli_exp, discrete_gaussian_array, discrete_laplace_array

__all__ = [
    "InsecureNoiseWarning",
    "DEFAULT_GRID_BITS",
    "laplace_scale",
    "gaussian_sigma",
    "gaussian_delta",
    "add_gaussian_noise",
    "add_laplace_noise",
    "local_dp",
    "central_dp",
    "randomized_response",
    "randomized_response_keep_probability",
]

DEFAULT_GRID_BITS = 20


class InsecureNoiseWarning(UserWarning):
    """Floating-point noise was requested: vulnerable to least-significant-bit attacks."""


def laplace_scale(*, epsilon: float, sensitivity: float) -> float:
    """Laplace scale ``b = Delta_1 / epsilon`` for ``epsilon``-DP (Dwork et al. 2006)."""
    if not (epsilon > 0 and sensitivity > 0):
        raise ValueError("epsilon and sensitivity must be positive")
    return sensitivity / epsilon


def _log_phi(x: float) -> float:
    """``log Phi(x)`` for the standard normal CDF, stable in the lower tail."""
    return math.log(0.5) + _log_erfc(-x / math.sqrt(2))


def gaussian_delta(*, sigma: float, epsilon: float, sensitivity: float) -> float:
    """The exact ``delta`` of ``N(0, sigma^2)`` at ``epsilon`` (Balle and Wang 2018, Thm. 8)."""
    if not (sigma > 0 and sensitivity > 0 and epsilon >= 0):
        raise ValueError("sigma and sensitivity must be positive, epsilon non-negative")
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    first = math.exp(_log_phi(a - b))
    second = math.exp(epsilon + _log_phi(-a - b))
    return max(0.0, first - second)


def gaussian_sigma(
    *, epsilon: float, delta: float, sensitivity: float, tolerance: float = 1e-10
) -> float:
    """Smallest ``sigma`` with :func:`gaussian_delta` ``<= delta`` (analytic Gaussian mechanism).

    >>> round(gaussian_sigma(epsilon=1.0, delta=1e-5, sensitivity=1.0), 2)
    3.73
    """
    if not (epsilon > 0 and 0 < delta < 1 and sensitivity > 0):
        raise ValueError("need epsilon > 0, 0 < delta < 1 and sensitivity > 0")
    lo, hi = 0.0, sensitivity
    while gaussian_delta(sigma=hi, epsilon=epsilon, sensitivity=sensitivity) > delta:
        lo, hi = hi, hi * 2
    while hi - lo > tolerance * hi:
        mid = (lo + hi) / 2
        if mid > 0 and gaussian_delta(sigma=mid, epsilon=epsilon, sensitivity=sensitivity) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def _grid(granularity: float | None, scale: float) -> float:
    g = scale * 2.0**-DEFAULT_GRID_BITS if granularity is None else float(granularity)
    if not (g > 0 and math.isfinite(g)):
        raise ValueError(f"granularity must be positive, got {granularity}")
    return g


def _warn_insecure() -> None:
    warnings.warn(
        "floating-point DP noise (secure=False) leaks through least significant bits "
        "(Mironov 2012); use the default exact discrete sampler for real releases",
        InsecureNoiseWarning,
        stacklevel=3,
    )


def _float_rng(rng: RandomSource | None) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(resolve(rng).random_bytes(32), "big"))


def add_gaussian_noise(
    x: np.ndarray,
    *,
    sigma: float,
    granularity: float | None = None,
    secure: bool = True,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """``round_g(x) + g * Z`` with ``Z`` discrete Gaussian of variance ``(sigma / g)^2``.

    The result is ``float64`` and an exact multiple of ``g`` (default ``sigma * 2^-20``).
    """
    arr = np.asarray(x, dtype=np.float64)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if not secure:
        _warn_insecure()
        return arr + _float_rng(rng).normal(0.0, sigma, size=arr.shape)
    g = _grid(granularity, sigma)
    noise = discrete_gaussian_array(arr.shape, sigma_squared=(sigma / g) ** 2, rng=rng)
    return (np.rint(arr / g) + noise.astype(np.float64)) * g


def add_laplace_noise(
    x: np.ndarray,
    *,
    scale: float,
    granularity: float | None = None,
    secure: bool = True,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """``round_g(x) + g * Z`` with ``Z`` discrete Laplace of scale ``scale / g``."""
    arr = np.asarray(x, dtype=np.float64)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if not secure:
        _warn_insecure()
        return arr + _float_rng(rng).laplace(0.0, scale, size=arr.shape)
    g = _grid(granularity, scale)
    noise = discrete_laplace_array(arr.shape, scale=scale / g, rng=rng)
    return (np.rint(arr / g) + noise.astype(np.float64)) * g


def _sigma_with_margin(
    *, clip_norm: float, noise_multiplier: float, granularity: float | None, dim: int
) -> tuple[float, float]:
    """``(sigma, g)`` with ``sigma = z * (C + g sqrt(d))`` covering the rounding margin."""
    if not (clip_norm > 0 and noise_multiplier > 0):
        raise ValueError("clip norm and noise multiplier must be positive")
    base = noise_multiplier * clip_norm
    g = _grid(granularity, base)
    return noise_multiplier * (clip_norm + g * math.sqrt(dim)), g


def local_dp(
    update: np.ndarray,
    *,
    clip_norm: float,
    noise_multiplier: float,
    granularity: float | None = None,
    secure: bool = True,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """Local DP: a party clips its update to ``C`` and noises it *before* sending it.

    Output: ``clip(update, C) + N_Z(0, sigma^2)`` on the grid, ``sigma = z (C + g sqrt(d))``. Each
    release is the Gaussian mechanism with noise multiplier ``z`` for replacing the party's
    update (sensitivity ``2C`` for replace-one: account with ``z / 2`` in that model).
    """
    clipped, _ = clip_l2(update, clip_norm=clip_norm)
    sigma, g = _sigma_with_margin(
        clip_norm=clip_norm,
        noise_multiplier=noise_multiplier,
        granularity=granularity,
        dim=max(1, clipped.size),
    )
    return add_gaussian_noise(clipped, sigma=sigma, granularity=g, secure=secure, rng=rng)


def central_dp(
    aggregate: np.ndarray,
    *,
    clip_norm: float,
    noise_multiplier: float,
    divide_by: float = 1.0,
    granularity: float | None = None,
    secure: bool = True,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """Central DP: the aggregator noises the *sum* of updates each clipped to ``C`` by its sender.

    Output: ``(sum + N_Z(0, sigma^2)) / divide_by`` with ``sigma = z (C + g sqrt(d))``: adding or
    removing one contributor moves the sum by at most ``C`` (McMahan et al., "Learning
    Differentially Private Recurrent Language Models", ICLR 2018, DP-FedAvg). The caller must
    have clipped each update (:func:`vfl.privacy.clip_l2`).
    """
    if not divide_by > 0:
        raise ValueError(f"divide_by must be positive, got {divide_by}")
    arr = np.asarray(aggregate, dtype=np.float64)
    sigma, g = _sigma_with_margin(
        clip_norm=clip_norm,
        noise_multiplier=noise_multiplier,
        granularity=granularity,
        dim=max(1, arr.size),
    )
    noisy = add_gaussian_noise(arr, sigma=sigma, granularity=g, secure=secure, rng=rng)
    return noisy / divide_by


def _check_rr(epsilon: float, num_classes: int) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon) and num_classes >= 2):
        raise ValueError("randomized response needs a finite epsilon > 0 and at least 2 classes")


def randomized_response_keep_probability(*, epsilon: float, num_classes: int) -> float:
    """``P[output = true label] = e^eps / (e^eps + K - 1)`` (Warner 1965; K-ary RR)."""
    _check_rr(epsilon, num_classes)
    return 1.0 / (1.0 + (num_classes - 1) * math.exp(-epsilon))


def randomized_response(
    labels: np.ndarray,
    *,
    epsilon: float,
    num_classes: int,
    rng: RandomSource | None = None,
) -> np.ndarray:
    """K-ary randomized response on integer labels in ``[0, K)``: ``epsilon``-label-DP.

    Each label is kept with probability ``e^eps / (e^eps + K - 1)`` and otherwise replaced by one
    of the other ``K - 1`` classes uniformly (Warner 1965; as the label-DP baseline of Ghazi et
    al., "Deep Learning with Label Differential Privacy", NeurIPS 2021). Any two labels give
    output probabilities within a factor ``e^eps``, so every released label is
    ``epsilon``-DP with respect to that label; labels of different rows compose in parallel.

    Sampled exactly, without floating point: propose a class uniformly (``randbelow(K)``);
    accept the true class always and any other with probability ``exp(-eps)``
    (:func:`vfl.privacy.bernoulli_exp`); otherwise propose again. Then ``P[true] ∝ 1`` and
    ``P[other] ∝ e^-eps``, as required. ``epsilon`` is rounded *down* to a multiple of ``2^-32``
    (more noise, never less).
    """
    _check_rr(epsilon, num_classes)
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    source = resolve(rng)
    eps = Fraction(math.floor(epsilon * 2**32), 2**32)
    out = np.empty(arr.shape, dtype=np.int64)
    flat_in, flat_out = arr.ravel(), out.reshape(-1)
    for i, label in enumerate(flat_in.tolist()):
        while True:
            proposal = source.randbelow(num_classes)
            if proposal == label or bernoulli_exp(eps, source):
                flat_out[i] = proposal
                break
    return out.astype(arr.dtype)
