"""Heterogeneity profile of a horizontal federation, computed before training.

* **Labels**: Pearson's chi-square test of homogeneity on the clients x classes contingency table
  ``O``: ``E_ij = r_i c_j / N``, ``X^2 = sum (O_ij - E_ij)^2 / E_ij`` with
  ``(rows - 1)(cols - 1)`` degrees of freedom; the p-value is the chi-square survival function
  ``Q(k/2, X^2/2)``, the regularised upper incomplete gamma function, evaluated by its series or
  continued fraction (Press et al., *Numerical Recipes*, 3rd ed., Sec. 6.2).
* **Features**: per feature, the two-sample Kolmogorov-Smirnov statistic
  ``sup_x |F_a(x) - F_b(x)|`` and the Wasserstein-1 distance ``int |F_a(x) - F_b(x)| dx`` between
  each client's empirical distribution and the pooled one (Villani 2009, Remark 2.19 for W1 in 1-D).

In production the profile is computed where the data is (each client's table of label counts and
its feature summaries); :func:`profile` takes the per-client arrays directly for simulation and
for the aggregator's report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vfl.errors import VflError

__all__ = [
    "chi2_sf",
    "chi_square_homogeneity",
    "ks_statistic",
    "wasserstein1",
    "client_summary",
    "profile",
    "save_profile",
]

_EPS = 1e-15
_ITMAX = 10_000


def _gamma_p_series(a: float, x: float) -> float:
    term = total = 1.0 / a
    ap = a
    for _ in range(_ITMAX):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_q_cf(a: float, x: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, _ITMAX):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(x: float, dof: int) -> float:
    """``P(X > x)`` for ``X ~ chi^2(dof)``: ``Q(dof/2, x/2)`` (Numerical Recipes, Sec. 6.2).

    >>> round(chi2_sf(3.841458820694124, 1), 6)
    0.05
    """
    if dof < 1:
        raise VflError(f"chi-square needs dof >= 1, got {dof}")
    if x <= 0:
        return 1.0
    a, half = dof / 2.0, x / 2.0
    if half < a + 1.0:
        return max(0.0, 1.0 - _gamma_p_series(a, half))
    return _gamma_q_cf(a, half)


def chi_square_homogeneity(counts: np.ndarray) -> dict[str, float]:
    """Chi-square test that every row (client) of ``counts`` has the same class distribution.

    Classes absent everywhere are dropped. Returns ``statistic``, ``dof``, ``p_value``.
    """
    o = np.asarray(counts, dtype=np.float64)
    if o.ndim != 2 or o.shape[0] < 2:
        raise VflError(f"need a clients x classes table with >= 2 clients, got shape {o.shape}")
    o = o[o.sum(axis=1) > 0][:, o.sum(axis=0) > 0]
    if o.shape[0] < 2 or o.shape[1] < 2:
        return {"statistic": 0.0, "dof": 0.0, "p_value": 1.0}
    e = o.sum(axis=1, keepdims=True) * o.sum(axis=0, keepdims=True) / o.sum()
    stat = float(((o - e) ** 2 / e).sum())
    dof = (o.shape[0] - 1) * (o.shape[1] - 1)
    return {"statistic": stat, "dof": float(dof), "p_value": chi2_sf(stat, dof)}


def _ecdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.sort(np.asarray(a, dtype=np.float64).ravel())
    b = np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0:
        raise VflError("distribution distances need two non-empty samples")
    grid = np.union1d(a, b)
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return grid, fa, fb


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic ``sup_x |F_a(x) - F_b(x)|``.

    >>> ks_statistic(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    1.0
    """
    _, fa, fb = _ecdfs(a, b)
    return float(np.max(np.abs(fa - fb)))


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance of two 1-D samples: ``int |F_a - F_b| dx`` over the pooled grid.

    >>> wasserstein1(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    2.0
    """
    grid, fa, fb = _ecdfs(a, b)
    return float(np.sum(np.abs(fa - fb)[:-1] * np.diff(grid)))


def client_summary(
    x: np.ndarray, y: np.ndarray, *, quantiles: int = 101
) -> tuple[dict[str, int], np.ndarray]:
    """What a client shares for the profile: label counts and ``quantiles`` per-feature quantiles
    (shape ``(quantiles, d)``), never its rows."""
    if quantiles < 2:
        raise VflError(f"need at least 2 quantiles, got {quantiles}")
    classes, counts = np.unique(np.asarray(y).ravel(), return_counts=True)
    label_counts = {str(c.item()): int(k) for c, k in zip(classes, counts, strict=True)}
    sketch = np.quantile(np.asarray(x, dtype=np.float64), np.linspace(0, 1, quantiles), axis=0)
    return label_counts, sketch


def profile(
    label_counts: Mapping[str, Mapping[str, int]],
    feature_samples: Mapping[str, np.ndarray] | None = None,
    *,
    feature_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Label chi-square test across clients and per-feature KS / W1 of each client vs the others.

    ``feature_samples[c]`` is client ``c``'s rows or quantile sketch, shape ``(m_c, d)``; each
    client is compared with the union of the *other* clients' samples (each sample counted once).
    """
    names = sorted(label_counts)
    if len(names) < 2:
        raise VflError("a heterogeneity profile needs at least two clients")
    classes = sorted({c for n in names for c in label_counts[n]})
    counts = np.array([[label_counts[n].get(c, 0) for c in classes] for n in names], np.int64)
    out: dict[str, Any] = {
        "clients": names,
        "classes": classes,
        "label_counts": {n: counts[i].tolist() for i, n in enumerate(names)},
        "label_chi_square": chi_square_homogeneity(counts),
    }
    if feature_samples:
        samples = {n: np.asarray(feature_samples[n], dtype=np.float64) for n in names}
        d = samples[names[0]].shape[1]
        cols = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(d)]
        if len(cols) != d or any(s.ndim != 2 or s.shape[1] != d for s in samples.values()):
            raise VflError("feature samples must all be (m, d) with d = number of feature names")
        per_feature: dict[str, dict[str, float]] = {}
        for j, col in enumerate(cols):
            ks, w1 = [], []
            for n in names:
                rest = np.concatenate([samples[o][:, j] for o in names if o != n])
                ks.append(ks_statistic(samples[n][:, j], rest))
                w1.append(wasserstein1(samples[n][:, j], rest))
            per_feature[col] = {
                "ks_max": max(ks),
                "ks_mean": float(np.mean(ks)),
                "w1_max": max(w1),
                "w1_mean": float(np.mean(w1)),
            }
        out["features"] = per_feature
        out["feature_ks_max"] = max(v["ks_max"] for v in per_feature.values())
    return out


def save_profile(report: Mapping[str, Any], path: Path) -> None:
    """Write the profile as indented JSON."""
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
