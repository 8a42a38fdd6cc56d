"""Renyi differential privacy of the (Poisson) sampled Gaussian mechanism: pure functions.

The sampled Gaussian mechanism (SGM) releases ``f(S) + N(0, sigma^2 I)`` where ``S`` keeps each
record independently with probability ``q`` and ``f`` has L2 sensitivity 1 (``sigma`` is the
*noise multiplier*). Mironov, Talwar and Zhang, "Renyi Differential Privacy of the Sampled
Gaussian Mechanism" (2019), Section 3, give its RDP at order ``alpha`` as
``eps(alpha) = log(A_alpha) / (alpha - 1)`` with

    A_alpha = E_{z ~ mu_0} [ ((1 - q) + q * mu_1(z) / mu_0(z)) ^ alpha ],
    mu_0 = N(0, sigma^2),  mu_1 = N(1, sigma^2).

* integer ``alpha`` (Section 3.2): ``A_alpha = sum_k C(alpha, k) (1-q)^(alpha-k) q^k
  exp((k^2 - k) / (2 sigma^2))``;
* fractional ``alpha`` (Section 3.3): the integral split at ``z0 = sigma^2 log(1/q - 1) + 1/2``
  into two series of binomial terms times Gaussian tails, summed until they converge.

Everything is summed in log space so that large orders and tiny ``q`` neither overflow nor
underflow. RDP composes additively over steps (Mironov 2017, Proposition 1).

The conversion to ``(epsilon, delta)`` is the improved one of Balle, Barthe, Gaboardi, Hsu and
Sato, "Hypothesis testing interpretations and Renyi differential privacy" (AISTATS 2020,
Theorem 21) and Canonne, Kamath and Steinke (2020, Proposition 12)::

    epsilon = min_alpha  rdp(alpha) + log1p(-1/alpha) - log(delta * alpha) / (alpha - 1)

together with the KL bound ``delta <= sqrt(1 - exp(-rdp))`` for small divergences, exactly as
Google's ``dp-accounting`` RDP accountant computes it, over the same default orders.

>>> round(epsilon_for_plan(noise_multiplier=1.1, sampling_rate=0.01, steps=1000, delta=1e-5), 3)
1.712
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "DEFAULT_ORDERS",
    "rdp_sampled_gaussian",
    "rdp_gaussian",
    "epsilon_from_rdp",
    "delta_from_rdp",
    "epsilon_for_plan",
    "noise_for_epsilon",
]

# The same orders as dp-accounting's RdpAccountant (fine grid near 1, integers, a few large ones).
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + [float(a) for a in range(11, 64)]
) + (128.0, 256.0, 512.0, 1024.0)

_MAX_FRAC_TERMS = 1000


def _log_add(logx: float, logy: float) -> float:
    """``log(exp(logx) + exp(logy))`` without overflow."""
    a, b = min(logx, logy), max(logx, logy)
    if a == -math.inf:
        return b
    return math.log1p(math.exp(a - b)) + b


def _log_comb(n: float, k: float) -> float:
    """``log C(n, k)`` for real ``n`` through the log-gamma function."""
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_erfc(x: float) -> float:
    """``log(erfc(x))``, with the asymptotic (Laurent) series once ``erfc`` underflows."""
    r = math.erfc(x)
    if r > 0.0:
        return math.log(r)
    return (
        -math.log(math.pi) / 2
        - math.log(x)
        - x**2
        - 0.5 * x**-2
        + 0.625 * x**-4
        - 37.0 / 24.0 * x**-6
        + 353.0 / 64.0 * x**-8
    )


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    """``log A_alpha`` for integer ``alpha`` (Mironov et al. 2019, Section 3.2)."""
    log_a = -math.inf
    log_q, log_1mq = math.log(q), math.log1p(-q)
    for k in range(alpha + 1):
        term = _log_comb(alpha, k) + k * log_q + (alpha - k) * log_1mq
        log_a = _log_add(log_a, term + (k * k - k) / (2 * sigma**2))
    return log_a


def _log_a_frac(q: float, sigma: float, alpha: float) -> float:
    """``log A_alpha`` for fractional ``alpha`` (Mironov et al. 2019, Section 3.3).

    Returns ``inf`` (the order is then ignored) if the series does not converge.
    """
    log_a0 = log_a1 = -math.inf
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    log_q, log_1mq = math.log(q), math.log1p(-q)
    last_s0 = last_s1 = -math.inf
    for i in range(_MAX_FRAC_TERMS):
        coef = _log_comb(alpha, i)
        j = alpha - i
        log_t0 = coef + i * log_q + j * log_1mq
        log_t1 = coef + j * log_q + i * log_1mq
        log_e0 = math.log(0.5) + _log_erfc((i - z0) / (math.sqrt(2) * sigma))
        log_e1 = math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2) * sigma))
        log_s0 = log_t0 + (i * i - i) / (2 * sigma**2) + log_e0
        log_s1 = log_t1 + (j * j - j) / (2 * sigma**2) + log_e1
        log_a0 = _log_add(log_a0, log_s0)
        log_a1 = _log_add(log_a1, log_s1)
        total = _log_add(log_a0, log_a1)
        if log_s0 < last_s0 and log_s1 < last_s1 and max(log_s0, log_s1) < total - 30:
            return total
        last_s0, last_s1 = log_s0, log_s1
    return math.inf


def _check_orders(orders: Sequence[float]) -> np.ndarray:
    arr = np.asarray(orders, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0 or not np.all(arr > 1):
        raise ValueError("RDP orders must be a non-empty sequence of numbers > 1")
    return arr


def rdp_sampled_gaussian(
    *, sampling_rate: float, noise_multiplier: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> np.ndarray:
    """RDP ``eps(alpha)`` of one step of the Poisson-sampled Gaussian mechanism, per order.

    ``eps(alpha) = log(A_alpha) / (alpha - 1)`` (Mironov, Talwar, Zhang 2019, Theorem 4/Sec. 3);
    with ``q = 1`` it is the plain Gaussian mechanism's ``alpha / (2 sigma^2)``.
    """
    q, sigma = float(sampling_rate), float(noise_multiplier)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"sampling rate must be in [0, 1], got {q}")
    if sigma < 0:
        raise ValueError(f"noise multiplier must be non-negative, got {sigma}")
    arr = _check_orders(orders)
    out = np.empty_like(arr)
    for n, alpha in enumerate(arr.tolist()):
        if q == 0.0:
            out[n] = 0.0
        elif sigma == 0.0 or math.isinf(alpha):
            out[n] = math.inf
        elif q == 1.0:
            out[n] = alpha / (2 * sigma**2)
        elif float(alpha).is_integer():
            out[n] = _log_a_int(q, sigma, int(alpha)) / (alpha - 1)
        else:
            out[n] = _log_a_frac(q, sigma, alpha) / (alpha - 1)
    return out


def rdp_gaussian(
    *, noise_multiplier: float, orders: Sequence[float] = DEFAULT_ORDERS
) -> np.ndarray:
    """RDP of the Gaussian mechanism with sensitivity 1: ``alpha / (2 sigma^2)`` (Mironov 2017)."""
    return rdp_sampled_gaussian(sampling_rate=1.0, noise_multiplier=noise_multiplier, orders=orders)


def epsilon_from_rdp(
    *, orders: Sequence[float], rdp: Sequence[float] | np.ndarray, delta: float
) -> tuple[float, float]:
    """Smallest ``epsilon`` over the orders for a given ``delta``; returns ``(epsilon, order)``.

    ``epsilon = rdp + log1p(-1/alpha) - log(delta * alpha) / (alpha - 1)`` (Balle et al. 2020,
    Theorem 21; Canonne-Kamath-Steinke 2020, Proposition 12), ``epsilon = 0`` where the KL bound
    ``delta^2 > 1 - exp(-rdp)`` already holds; orders ``<= 1.01`` are skipped (unstable).
    """
    arr = _check_orders(orders)
    values = np.asarray(rdp, dtype=np.float64)
    if values.shape != arr.shape:
        raise ValueError("orders and rdp must have the same length")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    best, best_order = math.inf, float(arr[0])
    for alpha, r in zip(arr.tolist(), values.tolist(), strict=True):
        if r < 0:
            eps = 0.0
        elif delta**2 + math.expm1(-r) > 0:
            eps = 0.0
        elif alpha > 1.01:
            eps = r + math.log1p(-1 / alpha) - math.log(delta * alpha) / (alpha - 1)
        else:
            eps = math.inf
        if eps < best:
            best, best_order = eps, alpha
    return max(0.0, best), best_order


def delta_from_rdp(
    *, orders: Sequence[float], rdp: Sequence[float] | np.ndarray, epsilon: float
) -> tuple[float, float]:
    """Smallest ``delta`` over the orders for a given ``epsilon``; returns ``(delta, order)``.

    ``log delta = (alpha - 1)(rdp - epsilon + log1p(-1/alpha)) - log(alpha)`` (same sources as
    :func:`epsilon_from_rdp`), and the KL bound ``delta <= sqrt(1 - exp(-rdp))``.
    """
    arr = _check_orders(orders)
    values = np.asarray(rdp, dtype=np.float64)
    if values.shape != arr.shape:
        raise ValueError("orders and rdp must have the same length")
    if epsilon < 0:
        raise ValueError(f"epsilon must be non-negative, got {epsilon}")
    best, best_order = math.inf, float(arr[0])
    for alpha, r in zip(arr.tolist(), values.tolist(), strict=True):
        if r <= 0:
            log_delta = -math.inf
        elif math.isinf(r):
            log_delta = 0.0
        else:
            log_delta = 0.5 * math.log1p(-math.exp(-r))
        if alpha > 1.01 and not math.isinf(r):
            bound = (alpha - 1) * (r - epsilon + math.log1p(-1 / alpha)) - math.log(alpha)
            log_delta = min(log_delta, bound)
        if log_delta < best:
            best, best_order = log_delta, alpha
    return min(math.exp(best), 1.0), best_order


def epsilon_for_plan(
    *,
    noise_multiplier: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
) -> float:
    """``epsilon`` of ``steps`` compositions of the sampled Gaussian mechanism at ``delta``."""
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    if steps == 0:
        return 0.0
    rdp = steps * rdp_sampled_gaussian(
        sampling_rate=sampling_rate, noise_multiplier=noise_multiplier, orders=orders
    )
    return epsilon_from_rdp(orders=orders, rdp=rdp, delta=delta)[0]


def noise_for_epsilon(
    *,
    epsilon: float,
    sampling_rate: float,
    steps: int,
    delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
    tolerance: float = 1e-4,
    max_noise: float = 1e4,
) -> float:
    """Smallest noise multiplier whose plan spends at most ``epsilon`` (bisection).

    ``epsilon_for_plan`` decreases monotonically in the noise multiplier, so bisection on
    ``[0, max_noise]`` converges; the returned value (the upper end of the final bracket, whose
    relative width is ``< tolerance``) always satisfies the target.
    """
    if epsilon <= 0:
        raise ValueError(f"target epsilon must be positive, got {epsilon}")

    def eps(z: float) -> float:
        return epsilon_for_plan(
            noise_multiplier=z, sampling_rate=sampling_rate, steps=steps, delta=delta, orders=orders
        )

    hi = 1.0
    while eps(hi) > epsilon:
        hi *= 2
        if hi > max_noise:
            raise ValueError(f"no noise multiplier up to {max_noise:g} reaches epsilon {epsilon}")
    lo = 0.0
    while hi - lo > tolerance * hi:
        mid = (lo + hi) / 2
        if eps(mid) > epsilon:
            lo = mid
        else:
            hi = mid
    return hi
