"""Quantile binning of one party's own features (fitted on its own training rows, kept locally).

Every feature gets at most ``max_bin - 1`` cut points ``c_0 < c_1 < ...``: the midpoints of the
distinct values when there are at most ``max_bin`` of them, else the distinct inner quantiles.
A value's bin is the number of cuts ``<= x`` (``searchsorted(c, x, "right")``), so
``bin <= b  <=>  x < c_b``: the split "bin <= b" is the threshold ``x < c_b``. Missing values
(NaN) go to the fixed extra bin ``max_bin``. Every feature has ``max_bin + 1`` bins on the wire
(unused bins are empty), so the number of distinct values of a feature is not revealed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["Binner"]


def _cuts(x: npt.NDArray[np.float64], max_bin: int) -> npt.NDArray[np.float64]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.zeros(0)
    u = np.unique(x)
    if u.size <= max_bin:
        return np.asarray((u[1:] + u[:-1]) / 2.0, dtype=np.float64)
    q = np.quantile(x, np.linspace(0.0, 1.0, max_bin + 1)[1:-1])
    cuts = np.unique(q)
    return np.asarray(cuts[cuts > u[0]], dtype=np.float64)


@dataclass(frozen=True)
class Binner:
    """Per-feature cut points; ``max_bin`` is also the index of the missing-value bin."""

    max_bin: int
    cuts: tuple[npt.NDArray[np.float64], ...]

    @classmethod
    def fit(cls, x: npt.NDArray[np.float64], max_bin: int) -> Binner:
        """Cut points of every column of ``x`` (rows x features)."""
        x = np.asarray(x, dtype=np.float64)
        return cls(max_bin, tuple(_cuts(x[:, j], max_bin) for j in range(x.shape[1])))

    @property
    def features(self) -> int:
        return len(self.cuts)

    @property
    def bins(self) -> int:
        """Bins per feature on the wire: ``max_bin`` value bins and one missing bin."""
        return self.max_bin + 1

    def transform(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int32]:
        """Bin indices (rows x features); NaN -> ``max_bin``."""
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.int32)
        for j, c in enumerate(self.cuts):
            col = x[:, j]
            out[:, j] = np.searchsorted(c, col, side="right")
            out[np.isnan(col), j] = self.max_bin
        return out

    def threshold(self, feature: int, bin_index: int) -> float:
        """The value ``t`` with ``bin <= bin_index  <=>  x < t`` (``inf`` past the last cut)."""
        c = self.cuts[feature]
        return float(c[bin_index]) if bin_index < c.size else float("inf")
