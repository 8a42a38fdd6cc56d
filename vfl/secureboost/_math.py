"""Boosting math (pure functions): gradients, split gains, leaf weights (Chen & Guestrin 2016).

Second-order objective of one tree (XGBoost, KDD 2016, eqs. 6-7), with ``G``/``H`` the sums of
gradients and hessians of a node's rows and ``lambda = reg_lambda``::

    w* = -G / (H + lambda)
    gain = 1/2 [ G_L^2 / (H_L + lambda) + G_R^2 / (H_R + lambda) - G^2 / (H + lambda) ]

A split is valid when both children have ``H >= min_child_weight``; missing values (the last
bin) are tried on the left and on the right and the better side is kept (XGBoost's sparsity-aware
"default direction", section 3.4). SecureBoost (Cheng et al., IEEE Intelligent Systems 2021,
arXiv:1901.08755) evaluates exactly this on the per-bin sums that the label party decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vfl.secureboost._config import Objective

__all__ = [
    "Split",
    "best_split",
    "gradients",
    "leaf_weight",
    "base_margin",
    "transform",
    "loss",
]

FloatArray = npt.NDArray[np.float64]
MIN_GAIN = 1e-6  # XGBoost's kRtEps: a split must improve the objective by more than this


def base_margin(objective: Objective, y: FloatArray, classes: int) -> FloatArray:
    """The constant start margin: log-odds of the mean (binary), mean (regression), 0 (multiclass)."""
    if objective is Objective.BINARY:
        p = float(np.clip(np.mean(y), 1e-6, 1 - 1e-6))
        return np.array([np.log(p / (1 - p))])
    if objective is Objective.REGRESSION:
        return np.array([float(np.mean(y))])
    return np.zeros(classes)


def transform(objective: Objective, margin: FloatArray) -> FloatArray:
    """Margins (rows x outputs) to predictions: P(y=1), class probabilities, or values."""
    if objective is Objective.BINARY:
        return np.asarray(1.0 / (1.0 + np.exp(-margin[:, 0])))
    if objective is Objective.MULTICLASS:
        z = margin - margin.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return np.asarray(margin[:, 0])


def gradients(
    objective: Objective, y: FloatArray, margin: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``g, h`` (rows x outputs) of the loss at ``margin`` (XGBoost's formulas)."""
    if objective is Objective.BINARY:
        p = transform(objective, margin)
        return (p - y)[:, None], np.maximum(p * (1 - p), 1e-16)[:, None]
    if objective is Objective.MULTICLASS:
        p = transform(objective, margin)
        onehot = np.zeros_like(p)
        onehot[np.arange(len(y)), y.astype(np.int64)] = 1.0
        return p - onehot, np.maximum(2.0 * p * (1 - p), 1e-16)
    return (margin[:, 0] - y)[:, None], np.ones((len(y), 1))


def loss(objective: Objective, y: FloatArray, margin: FloatArray) -> float:
    """Mean log loss (binary, multiclass) or mean squared error (regression)."""
    pred = transform(objective, margin)
    if objective is Objective.BINARY:
        p = np.clip(pred, 1e-15, 1 - 1e-15)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    if objective is Objective.MULTICLASS:
        p = np.clip(pred[np.arange(len(y)), y.astype(np.int64)], 1e-15, 1.0)
        return float(-np.mean(np.log(p)))
    return float(np.mean((pred - y) ** 2))


def leaf_weight(g: float, h: float, *, reg_lambda: float, learning_rate: float) -> float:
    """``-learning_rate * G / (H + lambda)``."""
    return float(-learning_rate * g / (h + reg_lambda)) if h + reg_lambda > 0 else 0.0


@dataclass(frozen=True)
class Split:
    """The best split of one node within one histogram: feature slot, bin, missing side, gain."""

    gain: float
    slot: int
    bin: int
    missing_left: bool


def best_split(hist: FloatArray, *, reg_lambda: float, min_child_weight: float) -> Split | None:
    """Best "bin <= b" split over a ``features x (max_bin + 1) x 2`` histogram of ``(G, H)``.

    The last bin holds the missing values. Vectorised over features and bins; ``None`` when no
    split is valid or none gains more than :data:`MIN_GAIN`.
    """
    if hist.shape[0] == 0:
        return None
    g, h = hist[:, :-1, 0], hist[:, :-1, 1]
    g_miss, h_miss = hist[:, -1, 0:1], hist[:, -1, 1:2]
    gl, hl = np.cumsum(g, axis=1)[:, :-1], np.cumsum(h, axis=1)[:, :-1]
    g_tot = g.sum(axis=1, keepdims=True) + g_miss
    h_tot = h.sum(axis=1, keepdims=True) + h_miss
    parent = g_tot**2 / (h_tot + reg_lambda)
    best: Split | None = None
    for missing_left in (False, True):  # XGBoost tries the missing values right, then left
        gll = gl + g_miss if missing_left else gl
        hll = hl + h_miss if missing_left else hl
        grr, hrr = g_tot - gll, h_tot - hll
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = 0.5 * (gll**2 / (hll + reg_lambda) + grr**2 / (hrr + reg_lambda) - parent)
        valid = (hll >= min_child_weight) & (hrr >= min_child_weight) & np.isfinite(gain)
        # a split must send rows both ways: the left side below the cut must hold some hessian
        valid &= (hll > 0) & (hrr > 0)
        gain = np.where(valid, gain, -np.inf)
        if gain.size == 0:
            continue
        flat = int(np.argmax(gain))
        value = float(gain.flat[flat])
        if value > MIN_GAIN and (best is None or value > best.gain):
            slot, b = divmod(flat, gain.shape[1])
            best = Split(gain=value, slot=int(slot), bin=int(b), missing_left=missing_left)
    return best
