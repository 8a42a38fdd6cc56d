"""Pure math of hetero LR: sigmoid linearisation, batches, schedules, penalties, scaling.

Every party calls these with the same shared parameters and gets the same answer, which is how
batches and the validation split are agreed without messages.
"""

from __future__ import annotations

import numpy as np

from vfl.errors import VflError
from vfl.hetero_lr._config import Approximation, LRSchedule, Penalty

__all__ = [
    "MIN_BATCH_FACTOR",
    "apply_penalty",
    "balanced_weights",
    "batches",
    "learning_rate",
    "linearise",
    "min_batch_size",
    "sigmoid",
    "split_rows",
    "standardise_fit",
]

# A batch must hold at least MIN_BATCH_FACTOR * (features + 1) rows: each revealed gradient is a set
# of (features) linear combinations of per-sample values, so a batch much larger than the feature
# count keeps real-valued per-sample values underdetermined. It does NOT stop label recovery from
# exact integer gradients (binary labels): see docs/protocols/hetero_lr.md, leakage table.
MIN_BATCH_FACTOR = 4
MIN_BATCH_ROWS = 32

TAYLOR_SLOPE = 0.25
TAYLOR_OFFSET = 0.5


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function 1 / (1 + exp(-z))."""
    out = np.empty_like(z, dtype=np.float64)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def linearise(
    u_label: np.ndarray, y: np.ndarray, weight: np.ndarray, *, approximation: Approximation
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (alpha, beta) with residual d = alpha + beta * u_H, u_H the feature parties' sum.

    Class weights c are folded in: d = c * (sigmoid~(u_G + u_H) - y).

    * taylor: sigmoid(z) ~ 0.5 + 0.25 z, so alpha = c (0.5 + 0.25 u_G - y), beta = 0.25 c.
    * local:  sigmoid(u_G + u_H) ~ s + s (1 - s) u_H with s = sigmoid(u_G),
      so alpha = c (s - y), beta = c s (1 - s).
    """
    if approximation is Approximation.TAYLOR:
        return weight * (TAYLOR_OFFSET + TAYLOR_SLOPE * u_label - y), weight * TAYLOR_SLOPE
    s = sigmoid(u_label)
    return weight * (s - y), weight * s * (1.0 - s)


def min_batch_size(n_features: int) -> int:
    """Smallest batch allowed for a party holding ``n_features`` columns (intercept included)."""
    return max(MIN_BATCH_ROWS, MIN_BATCH_FACTOR * (n_features + 1))


def split_rows(n: int, *, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices from a seeded permutation; validation may be empty."""
    perm = np.random.default_rng([seed, 0x5EED]).permutation(n)
    n_val = int(round(fraction * n))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def batches(n: int, *, batch_size: int, seed: int, epoch: int, task: int = 0) -> list[np.ndarray]:
    """Mini-batches (positions into 0..n-1) for one epoch; a short tail joins the previous batch."""
    perm = np.random.default_rng([seed, task, epoch]).permutation(n)
    out = [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    if len(out) > 1 and out[-1].size < batch_size // 2:
        tail = out.pop()
        out[-1] = np.concatenate((out[-1], tail))
    return out


def learning_rate(base: float, *, schedule: LRSchedule, decay: float, epoch: int) -> float:
    """Learning rate for ``epoch`` (0-based)."""
    if schedule is LRSchedule.CONSTANT:
        return base
    if schedule is LRSchedule.INVERSE_TIME:
        return base / (1.0 + decay * epoch)
    return base * decay**epoch


def apply_penalty(
    w: np.ndarray, grad: np.ndarray, *, lr: float, penalty: Penalty, alpha: float, free: int = 0
) -> np.ndarray:
    """One step w <- w - lr * grad with the penalty; the first ``free`` entries (intercept) are not penalised.

    L2: gradient of (alpha / 2) ||w||^2 added. L1: proximal step (soft threshold)
    w <- sign(v) max(|v| - lr * alpha, 0) after the plain step v = w - lr * grad.
    """
    if penalty is Penalty.L2:
        reg = alpha * w
        reg[:free] = 0.0
        return w - lr * (grad + reg)
    v = w - lr * grad
    if penalty is Penalty.L1:
        shrunk = np.sign(v) * np.maximum(np.abs(v) - lr * alpha, 0.0)
        shrunk[:free] = v[:free]
        return shrunk
    return v


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights n / (2 n_k) for binary labels y in {0, 1}."""
    n = y.size
    n1 = float(np.sum(y == 1))
    n0 = n - n1
    if n0 == 0 or n1 == 0:
        raise VflError("balanced class weights need both classes in the training rows")
    return np.where(y == 1, n / (2.0 * n1), n / (2.0 * n0))


def standardise_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (constant columns get scale 1)."""
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)
