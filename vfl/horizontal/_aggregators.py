"""Aggregation strategies, chosen by name from :data:`AGGREGATORS` (STYLE.md: variants from a
registry). A strategy only decides; the math is in :mod:`vfl.horizontal._robust`.

``fedavg`` weights by samples times reputation; the robust strategies weight every admitted client
equally (their guarantees are for unweighted statistics). Every strategy may keep state between
rounds (``state()`` / ``load_state()``: arrays only, checkpointed as npz).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vfl.errors import ConfigError
from vfl.horizontal import _robust

__all__ = [
    "Aggregate",
    "Aggregator",
    "AGGREGATORS",
    "DEFAULT_ROBUST",
    "make_aggregator",
    "FedAvgAggregator",
    "MedianAggregator",
    "TrimmedMeanAggregator",
    "KrumAggregator",
    "CenteredClipAggregator",
]

DEFAULT_ROBUST = "centered_clip"


@dataclass(frozen=True)
class Aggregate:
    """The aggregated update and the clients a strategy set aside (e.g. not selected by Krum)."""

    update: np.ndarray
    flagged: tuple[str, ...] = ()


class Aggregator(Protocol):
    """A named aggregation strategy with optional state between rounds."""

    name: str

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate: ...

    def state(self) -> dict[str, np.ndarray]: ...

    def load_state(self, state: Mapping[str, np.ndarray]) -> None: ...


def _stack(updates: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    names = sorted(updates)
    return names, np.stack([np.asarray(updates[n], dtype=np.float64) for n in names])


class _Stateless:
    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        if state:
            raise ConfigError(f"aggregator has no state, checkpoint holds {sorted(state)}")


class FedAvgAggregator(_Stateless):
    """Sample-weighted mean (FedAvg); not robust: one scaled update moves it arbitrarily."""

    name = "fedavg"

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate:
        names, u = _stack(updates)
        return Aggregate(_robust.weighted_mean(u, np.array([weights[n] for n in names])))


class MedianAggregator(_Stateless):
    """Coordinate-wise median (Yin et al., ICML 2018)."""

    name = "median"

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate:
        return Aggregate(_robust.coordinate_median(_stack(updates)[1]))


class TrimmedMeanAggregator(_Stateless):
    """Coordinate-wise trimmed mean dropping ``beta`` of each tail (Yin et al., ICML 2018)."""

    name = "trimmed_mean"

    def __init__(self, *, beta: float = 0.2) -> None:
        if not 0 <= beta < 0.5:
            raise ConfigError(f"trimmed_mean.beta must be in [0, 0.5), got {beta}")
        self.beta = beta

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate:
        return Aggregate(_robust.trimmed_mean(_stack(updates)[1], beta=self.beta))


class KrumAggregator(_Stateless):
    """Krum (``m = 1``) or multi-Krum (Blanchard et al., NeurIPS 2017) against ``f`` Byzantine.

    With fewer than ``f + 3`` updates, ``f`` is lowered to ``n - 3`` (and plain mean below 3).
    """

    name = "krum"

    def __init__(self, *, f: int = 2, m: int = 1) -> None:
        if f < 0 or m < 1:
            raise ConfigError(f"krum needs f >= 0 and m >= 1, got f={f}, m={m}")
        self.f = f
        self.m = m

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate:
        names, u = _stack(updates)
        if len(names) < 3:
            return Aggregate(u.mean(axis=0))
        f = min(self.f, len(names) - 3)
        agg, chosen = _robust.multi_krum(u, f=f, m=min(self.m, len(names)))
        keep = {names[i] for i in chosen}
        return Aggregate(agg, tuple(n for n in names if n not in keep))


class CenteredClipAggregator:
    """Centred clipping with momentum (Karimireddy, He & Jaggi, ICML 2021, Alg. 2).

    As in the paper, the clipped quantities are per-client momenta and the centre is the previous
    round's aggregate (learning from history)::

        m_i <- (1 - beta) u_i + beta m_i          (for each client i heard this round)
        v_t  = CC({m_i}; v_{t-1}, tau, L)

    ``tau=None`` uses the adaptive median radius of :func:`~vfl.horizontal._robust.centered_clip`.
    Clients whose distance to ``v_{t-1}`` exceeded the radius in the first iteration are flagged.
    """

    name = "centered_clip"

    def __init__(self, *, tau: float | None = None, iterations: int = 3, beta: float = 0.5) -> None:
        if tau is not None and not tau > 0:
            raise ConfigError(f"centered_clip.tau must be > 0, got {tau}")
        if iterations < 1 or not 0 <= beta < 1:
            raise ConfigError("centered_clip needs iterations >= 1 and 0 <= beta < 1")
        self.tau = tau
        self.iterations = iterations
        self.beta = beta
        self._center: np.ndarray | None = None
        self._momenta: dict[str, np.ndarray] = {}

    def aggregate(
        self, updates: Mapping[str, np.ndarray], weights: Mapping[str, float]
    ) -> Aggregate:
        names, u = _stack(updates)
        moms = []
        for name, row in zip(names, u, strict=True):
            prev = self._momenta.get(name)
            mom = row if prev is None else (1.0 - self.beta) * row + self.beta * prev
            self._momenta[name] = mom
            moms.append(mom)
        m = np.stack(moms)
        center = np.zeros(u.shape[1]) if self._center is None else self._center
        dist = np.linalg.norm(m - center, axis=1)
        radius = float(np.median(dist)) if self.tau is None else self.tau
        flagged = tuple(n for n, d in zip(names, dist, strict=True) if d > 2.0 * radius > 0)
        v = _robust.centered_clip(m, center, tau=self.tau, iterations=self.iterations)
        self._center = v
        return Aggregate(v, flagged)

    def state(self) -> dict[str, np.ndarray]:
        out = {f"momentum/{n}": m for n, m in sorted(self._momenta.items())}
        if self._center is not None:
            out["center"] = self._center
        return out

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        self._center = None if "center" not in state else np.asarray(state["center"], np.float64)
        self._momenta = {
            k.split("/", 1)[1]: np.asarray(v, np.float64)
            for k, v in state.items()
            if k.startswith("momentum/")
        }


AGGREGATORS: dict[str, Callable[..., Aggregator]] = {
    "fedavg": FedAvgAggregator,
    "median": MedianAggregator,
    "trimmed_mean": TrimmedMeanAggregator,
    "krum": KrumAggregator,
    "multi_krum": lambda *, f=2, m=None: KrumAggregator(f=f, m=m if m is not None else 5),
    "centered_clip": CenteredClipAggregator,
}


def make_aggregator(name: str, options: Mapping[str, Any] | None = None) -> Aggregator:
    """The strategy registered as ``name``, built with keyword ``options``."""
    factory = AGGREGATORS.get(name)
    if factory is None:
        raise ConfigError(f"unknown aggregator {name!r}; choose one of {', '.join(AGGREGATORS)}")
    try:
        return factory(**dict(options or {}))
    except TypeError as exc:
        raise ConfigError(
            f"aggregator {name!r}: bad options {dict(options or {})}: {exc}"
        ) from None
