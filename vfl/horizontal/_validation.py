"""Update validation before aggregation, and the per-client reputation it feeds.

A client's update (the difference between its locally trained parameters and the global ones) is
checked against the global parameters before it may reach an aggregator:

1. ``shape`` -- same shape as the global parameters;
2. ``dtype`` -- same dtype;
3. ``non_finite`` -- every value finite (no NaN / inf);
4. ``norm`` -- ``||u||_2 <= max_norm`` (absolute bound), and ``||u||_2 <= ratio * median_j ||u_j||``
   over the round's shape-valid updates (relative bound, so a scaled update is refused without a
   hand-tuned constant; cf. norm bounding in Sun et al., "Can You Really Backdoor Federated
   Learning?", 2019).

The result is a :class:`Verdict` with the reason; the engine logs rejections and lowers the
client's :class:`Reputation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from vfl.errors import ConfigError

__all__ = ["Verdict", "ValidationPolicy", "validate_update", "validate_round", "Reputation"]


@dataclass(frozen=True)
class Verdict:
    """Whether an update was accepted; ``reason`` is empty when it was, else names the check."""

    accepted: bool
    reason: str = ""
    norm: float = float("nan")


@dataclass(frozen=True)
class ValidationPolicy:
    """Bounds on updates: ``max_norm`` (absolute) and ``norm_ratio`` (times the round's median)."""

    max_norm: float | None = None
    norm_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.max_norm is not None and not self.max_norm > 0:
            raise ConfigError(f"validation.max_norm must be > 0, got {self.max_norm}")
        if self.norm_ratio is not None and not self.norm_ratio >= 1:
            raise ConfigError(f"validation.norm_ratio must be >= 1, got {self.norm_ratio}")


def validate_update(
    update: np.ndarray, reference: np.ndarray, *, max_norm: float | None = None
) -> Verdict:
    """Check one update against the global parameters' shape and dtype, finiteness and a bound.

    >>> import numpy as np
    >>> validate_update(np.array([3.0, 4.0]), np.zeros(2), max_norm=4.0)
    Verdict(accepted=False, reason='norm 5 > bound 4', norm=5.0)
    """
    if not isinstance(update, np.ndarray):
        return Verdict(False, f"not an array: {type(update).__name__}")
    if update.shape != reference.shape:
        return Verdict(False, f"shape {update.shape} != {reference.shape}")
    if update.dtype != reference.dtype:
        return Verdict(False, f"dtype {update.dtype} != {reference.dtype}")
    if not np.all(np.isfinite(update)):
        return Verdict(False, "non-finite values")
    norm = float(np.linalg.norm(update.astype(np.float64)))
    if max_norm is not None and norm > max_norm:
        return Verdict(False, f"norm {norm:.4g} > bound {max_norm:.4g}", norm)
    return Verdict(True, "", norm)


def validate_round(
    updates: Mapping[str, np.ndarray], reference: np.ndarray, policy: ValidationPolicy
) -> dict[str, Verdict]:
    """Validate every update of a round: per-update checks, then the relative norm bound."""
    verdicts = {
        name: validate_update(u, reference, max_norm=policy.max_norm) for name, u in updates.items()
    }
    norms = [v.norm for v in verdicts.values() if v.accepted]
    if policy.norm_ratio is not None and len(norms) >= 3:
        bound = policy.norm_ratio * float(np.median(norms))
        for name, v in verdicts.items():
            if v.accepted and v.norm > bound and bound > 0:
                verdicts[name] = Verdict(
                    False,
                    f"norm {v.norm:.4g} > {policy.norm_ratio:g} x median = {bound:.4g}",
                    v.norm,
                )
    return verdicts


class Reputation:
    """Per-client scores in [0, 1]: multiplied by ``penalty`` on a rejection, raised by ``recovery``
    (additively, capped at 1) on an accepted update; below ``exclude_below`` a client is excluded.

    Scores weight the sample-weighted mean (weight ``n_i * score_i``) and gate robust aggregators.
    """

    def __init__(
        self, *, penalty: float = 0.5, recovery: float = 0.1, exclude_below: float = 0.2
    ) -> None:
        if not 0 <= penalty < 1 or not 0 <= recovery <= 1 or not 0 <= exclude_below < 1:
            raise ConfigError(
                "reputation: need 0 <= penalty < 1, 0 <= recovery <= 1, 0 <= exclude < 1"
            )
        self.penalty = penalty
        self.recovery = recovery
        self.exclude_below = exclude_below
        self._scores: dict[str, float] = {}

    def score(self, client: str) -> float:
        return self._scores.get(client, 1.0)

    def reject(self, client: str) -> float:
        self._scores[client] = self.score(client) * self.penalty
        return self._scores[client]

    def accept(self, client: str) -> float:
        self._scores[client] = min(1.0, self.score(client) + self.recovery)
        return self._scores[client]

    def excluded(self, client: str) -> bool:
        return self.score(client) < self.exclude_below

    def as_dict(self) -> dict[str, float]:
        return dict(sorted(self._scores.items()))

    def load(self, scores: Mapping[str, float]) -> None:
        self._scores = {str(k): float(v) for k, v in scores.items()}
