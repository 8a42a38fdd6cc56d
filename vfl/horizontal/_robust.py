"""Aggregation math: pure functions over a stack of client updates (rows of ``U``, shape (n, d)).

Each function cites its source and states its formula. None of them mutates its input.
"""

from __future__ import annotations

import numpy as np

from vfl.errors import VflError

__all__ = [
    "weighted_mean",
    "coordinate_median",
    "trimmed_mean",
    "krum_scores",
    "multi_krum",
    "centered_clip",
]


def _stack(updates: np.ndarray) -> np.ndarray:
    u = np.asarray(updates, dtype=np.float64)
    if u.ndim != 2 or u.shape[0] == 0:
        raise VflError(f"need a non-empty (n, d) stack of updates, got shape {u.shape}")
    return u


def weighted_mean(updates: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """FedAvg (McMahan et al., AISTATS 2017, Algorithm 1): ``sum_i w_i u_i / sum_i w_i``.

    >>> weighted_mean(np.array([[0.0], [3.0]]), np.array([1.0, 2.0]))
    array([2.])
    """
    u = _stack(updates)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (u.shape[0],) or np.any(w < 0) or not w.sum() > 0:
        raise VflError("weights must be non-negative, one per update, with a positive sum")
    out: np.ndarray = (w[:, None] * u).sum(axis=0) / w.sum()
    return out


def coordinate_median(updates: np.ndarray) -> np.ndarray:
    """Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning: Towards
    Optimal Statistical Rates", ICML 2018, Def. 1): ``med_j = median_i U[i, j]``.

    >>> coordinate_median(np.array([[1.0, 9.0], [2.0, -9.0], [100.0, 0.0]]))
    array([2., 0.])
    """
    out: np.ndarray = np.median(_stack(updates), axis=0)
    return out


def trimmed_mean(updates: np.ndarray, *, beta: float) -> np.ndarray:
    """Coordinate-wise beta-trimmed mean (Yin et al., ICML 2018, Def. 2): per coordinate, drop the
    ``k = floor(beta * n)`` largest and ``k`` smallest values and average the remaining ``n - 2k``.

    >>> trimmed_mean(np.array([[0.0], [1.0], [2.0], [100.0]]), beta=0.25)
    array([1.5])
    """
    u = _stack(updates)
    if not 0 <= beta < 0.5:
        raise VflError(f"trimmed mean needs 0 <= beta < 0.5, got {beta}")
    k = int(np.floor(beta * u.shape[0]))
    s = np.sort(u, axis=0)
    out: np.ndarray = s[k : u.shape[0] - k].mean(axis=0)
    return out


def krum_scores(updates: np.ndarray, *, f: int) -> np.ndarray:
    """Krum scores (Blanchard et al., "Machine Learning with Adversaries: Byzantine Tolerant
    Gradient Descent", NeurIPS 2017, Sec. 4): ``s(i) = sum of ||u_i - u_j||^2 over the
    n - f - 2 nearest other updates j``. Needs ``n >= f + 3``.
    """
    u = _stack(updates)
    n = u.shape[0]
    if f < 0 or n < f + 3:
        raise VflError(f"Krum needs n >= f + 3 updates, got n={n}, f={f}")
    sq = (u * u).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (u @ u.T), 0.0)
    np.fill_diagonal(d2, np.inf)
    nearest = np.sort(d2, axis=1)[:, : n - f - 2]
    out: np.ndarray = nearest.sum(axis=1)
    return out


def multi_krum(updates: np.ndarray, *, f: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-Krum (Blanchard et al., NeurIPS 2017, Sec. 4): the mean of the ``m`` updates with the
    lowest Krum scores; ``m = 1`` is Krum. Returns (aggregate, indices selected).
    """
    u = _stack(updates)
    if not 1 <= m <= u.shape[0]:
        raise VflError(f"multi-Krum needs 1 <= m <= n, got m={m}, n={u.shape[0]}")
    chosen = np.sort(np.argsort(krum_scores(u, f=f), kind="stable")[:m])
    out: np.ndarray = u[chosen].mean(axis=0)
    return out, chosen


def centered_clip(
    updates: np.ndarray, center: np.ndarray, *, tau: float | None, iterations: int = 3
) -> np.ndarray:
    """Centred clipping (Karimireddy, He & Jaggi, "Learning from History for Byzantine Robust
    Optimization", ICML 2021, Alg. 2 / eq. CC), iterated ``L`` times from ``v_0 = center``::

        v_{l+1} = v_l + (1/n) sum_i (u_i - v_l) * min(1, tau / ||u_i - v_l||)

    ``tau=None`` picks, per iteration, the median of ``||u_i - v_l||`` (an adaptive radius, so at
    least half the updates pass unclipped).

    >>> centered_clip(np.array([[1.0], [1.0], [101.0]]), np.zeros(1), tau=1.0, iterations=1)
    array([1.])
    """
    u = _stack(updates)
    v = np.asarray(center, dtype=np.float64).copy()
    if v.shape != (u.shape[1],):
        raise VflError(f"centre has shape {v.shape}, updates have {u.shape[1]} coordinates")
    if tau is not None and not tau > 0:
        raise VflError(f"centred clipping needs tau > 0, got {tau}")
    for _ in range(iterations):
        diff = u - v
        dist = np.linalg.norm(diff, axis=1)
        radius = float(np.median(dist)) if tau is None else tau
        if radius <= 0:
            break
        scale = np.minimum(1.0, radius / np.maximum(dist, 1e-300))
        v = v + (diff * scale[:, None]).mean(axis=0)
    return v
