"""Binary and multi-class classification metrics: AUC, KS, accuracy, log-loss.

Pure numpy functions, no state. ``auc`` is the Mann-Whitney statistic with average ranks for ties
(Hanley & McNeil 1982), equal to the area under the ROC curve; ``ks`` is the Kolmogorov-Smirnov
statistic of credit scoring, max_t (TPR(t) - FPR(t)) over all thresholds (0 for a useless score).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from vfl.errors import VflError

__all__ = ["auc", "ks", "accuracy", "log_loss", "binary_metrics", "multiclass_metrics"]

_EPS = 1e-15


def _check_binary(y_true: npt.ArrayLike, score: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).astype(np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise VflError(f"labels and scores differ in length: {y.size} != {s.size}")
    if not np.all((y == 0) | (y == 1)):
        raise VflError("binary metrics need labels in {0, 1}")
    return y, s


def auc(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Area under the ROC curve: (sum of positive ranks - P(P+1)/2) / (P * N), ties averaged."""
    y, s = _check_binary(y_true, score)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise VflError("AUC is undefined when only one class is present")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(s.size, dtype=np.float64)
    sorted_s = s[order]
    # Average ranks over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [s.size]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ks(y_true: npt.ArrayLike, score: npt.ArrayLike) -> float:
    """Kolmogorov-Smirnov statistic: max over thresholds of TPR - FPR (at least 0)."""
    y, s = _check_binary(y_true, score)
    n_pos = y.sum()
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise VflError("KS is undefined when only one class is present")
    order = np.argsort(-s, kind="mergesort")
    ys = y[order]
    ss = s[order]
    tpr = np.cumsum(ys) / n_pos
    fpr = np.cumsum(1.0 - ys) / n_neg
    last_of_run = np.concatenate((np.diff(ss) != 0, [True]))
    return float(max(0.0, np.max(tpr[last_of_run] - fpr[last_of_run])))


def accuracy(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Fraction of equal entries."""
    a = np.asarray(y_true).ravel()
    b = np.asarray(y_pred).ravel()
    if a.shape != b.shape:
        raise VflError(f"labels and predictions differ in length: {a.size} != {b.size}")
    return float(np.mean(a == b))


def log_loss(y_true: npt.ArrayLike, proba: npt.ArrayLike) -> float:
    """Mean cross-entropy. Binary: proba of class 1, shape (n,); multi-class: (n, K), y in 0..K-1."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_true)
    if p.ndim == 1:
        yb, pb = _check_binary(y, p)
        pb = np.clip(pb, _EPS, 1.0 - _EPS)
        return float(-np.mean(yb * np.log(pb) + (1.0 - yb) * np.log(1.0 - pb)))
    idx = y.astype(np.int64).ravel()
    if idx.size != p.shape[0] or idx.min() < 0 or idx.max() >= p.shape[1]:
        raise VflError("multi-class log-loss needs labels in 0..K-1, one per row")
    picked = np.clip(p[np.arange(idx.size), idx], _EPS, 1.0)
    return float(-np.mean(np.log(picked)))


def binary_metrics(
    y_true: npt.ArrayLike, proba: npt.ArrayLike, *, prefix: str = ""
) -> dict[str, Any]:
    """AUC, KS, accuracy (threshold 0.5) and log-loss of binary probabilities."""
    p = np.asarray(proba, dtype=np.float64).ravel()
    y = np.asarray(y_true).astype(np.float64).ravel()
    return {
        f"{prefix}auc": auc(y, p),
        f"{prefix}ks": ks(y, p),
        f"{prefix}accuracy": accuracy(y, (p >= 0.5).astype(np.float64)),
        f"{prefix}logloss": log_loss(y, p),
    }


def multiclass_metrics(
    y_index: npt.ArrayLike, proba: npt.ArrayLike, *, prefix: str = ""
) -> dict[str, Any]:
    """Accuracy, log-loss and macro one-vs-rest AUC; ``y_index`` holds class positions 0..K-1."""
    p = np.asarray(proba, dtype=np.float64)
    y = np.asarray(y_index).astype(np.int64).ravel()
    aucs = [
        auc((y == k).astype(np.float64), p[:, k])
        for k in range(p.shape[1])
        if 0 < np.sum(y == k) < y.size
    ]
    out: dict[str, Any] = {
        f"{prefix}accuracy": accuracy(y, np.argmax(p, axis=1)),
        f"{prefix}logloss": log_loss(y, p),
    }
    if aucs:
        out[f"{prefix}auc_macro_ovr"] = float(np.mean(aucs))
    return out
