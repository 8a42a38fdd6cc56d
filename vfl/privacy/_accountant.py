"""The privacy accountant: history of sampled-Gaussian steps per party and per job, a budget,
and JSON state that a job persists and resumes.

The class only keeps history (as Opacus' accountants do); the math is in :mod:`vfl.privacy._rdp`.
Every call to :meth:`RdpAccountant.step` records one round: a party ran ``steps`` steps of the
sampled Gaussian mechanism with ``noise_multiplier`` and ``sampling_rate``. RDP composes
additively (Mironov 2017, Proposition 1), so a party's total RDP curve is the sum over its rounds,
converted once to ``(epsilon, delta)`` -- far tighter than adding per-round epsilons. Each
round's own epsilon is reported next to the running total, so the cumulative figure is never
mistaken for the per-round one.

Budget: with ``policy=BudgetPolicy.REFUSE`` a round whose total would exceed the budget is
refused *before* it runs (:meth:`check_plan` / :meth:`step` raise :class:`BudgetExceeded` and
record nothing); with ``BudgetPolicy.STOP`` the round that crosses the budget is recorded (it has
already run) and :attr:`RdpAccountant.exhausted` turns true, so training stops afterwards.

>>> acc = RdpAccountant(delta=1e-5, budget=PrivacyBudget(epsilon=2.0))
>>> r = acc.step(party="bank", noise_multiplier=1.1, sampling_rate=0.01, steps=500)
>>> round(r.round_epsilon, 3) == round(r.total_epsilon, 3)
True
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vfl._atomic import atomic_write
from vfl.errors import ConfigError, VflError
from vfl.privacy._rdp import DEFAULT_ORDERS, epsilon_from_rdp, rdp_sampled_gaussian

__all__ = [
    "BudgetExceeded",
    "BudgetPolicy",
    "PrivacyBudget",
    "GaussianRound",
    "RoundReport",
    "RdpAccountant",
    "epsilon_across_jobs",
]

_STATE_VERSION = 1


class BudgetExceeded(VflError):
    """A round or plan would spend more privacy than the budget allows."""


class BudgetPolicy(enum.Enum):
    """What the accountant does when the budget would be overspent."""

    REFUSE = "refuse"  # refuse the round (or plan) before it runs
    STOP = "stop"  # record the round that crosses the budget, then report exhausted


@dataclass(frozen=True)
class PrivacyBudget:
    """An ``epsilon`` budget at the accountant's ``delta``, and the policy when it is reached."""

    epsilon: float
    policy: BudgetPolicy = BudgetPolicy.REFUSE

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"privacy budget epsilon must be positive, got {self.epsilon}")


@dataclass(frozen=True)
class GaussianRound:
    """One round of one party: ``steps`` sampled-Gaussian steps."""

    party: str
    round: int
    noise_multiplier: float
    sampling_rate: float
    steps: int

    def __post_init__(self) -> None:
        if self.noise_multiplier <= 0 or not math.isfinite(self.noise_multiplier):
            raise ConfigError(f"noise multiplier must be positive, got {self.noise_multiplier}")
        if not 0.0 < self.sampling_rate <= 1.0:
            raise ConfigError(f"sampling rate must be in (0, 1], got {self.sampling_rate}")
        if self.steps < 1:
            raise ConfigError(f"steps must be at least 1, got {self.steps}")


@dataclass(frozen=True)
class RoundReport:
    """What a round cost: its own epsilon and the party's running total (both at ``delta``)."""

    job_id: str
    party: str
    round: int
    delta: float
    round_epsilon: float
    total_epsilon: float
    budget_epsilon: float | None
    exhausted: bool


class RdpAccountant:
    """RDP accountant of one job: per-party history, totals, budget; JSON persistence."""

    def __init__(
        self,
        *,
        delta: float,
        job_id: str = "",
        budget: PrivacyBudget | None = None,
        orders: tuple[float, ...] = DEFAULT_ORDERS,
    ) -> None:
        if not 0.0 < delta < 1.0:
            raise ConfigError(f"delta must be in (0, 1), got {delta}")
        self.delta = float(delta)
        self.job_id = job_id
        self.budget = budget
        self.orders = tuple(float(a) for a in orders)
        self._history: list[GaussianRound] = []
        self._rdp: dict[str, np.ndarray] = {}
        self._cache: dict[tuple[float, float, int], np.ndarray] = {}

    # -- math helpers -------------------------------------------------------------------------
    def _record_rdp(self, record: GaussianRound) -> np.ndarray:
        key = (record.noise_multiplier, record.sampling_rate, record.steps)
        if key not in self._cache:
            self._cache[key] = record.steps * rdp_sampled_gaussian(
                sampling_rate=record.sampling_rate,
                noise_multiplier=record.noise_multiplier,
                orders=self.orders,
            )
        return self._cache[key]

    def _epsilon(self, rdp: np.ndarray) -> float:
        return epsilon_from_rdp(orders=self.orders, rdp=rdp, delta=self.delta)[0]

    def _zero(self) -> np.ndarray:
        return np.zeros(len(self.orders), dtype=np.float64)

    # -- queries ------------------------------------------------------------------------------
    @property
    def parties(self) -> tuple[str, ...]:
        return tuple(sorted(self._rdp))

    @property
    def history(self) -> tuple[GaussianRound, ...]:
        return tuple(self._history)

    def epsilon(self, party: str) -> float:
        """The party's total ``epsilon`` over every recorded round (0 if none)."""
        return self._epsilon(self._rdp.get(party, self._zero()))

    def rdp(self, party: str) -> np.ndarray:
        """The party's total RDP curve (one value per order in :attr:`orders`)."""
        return self._rdp.get(party, self._zero()).copy()

    def job_epsilon(self) -> float:
        """The job's worst party: ``max`` over parties of their total ``epsilon``.

        Parties protect disjoint data (their own records), so each party's guarantee is its own;
        the job reports the weakest one.
        """
        return max((self.epsilon(p) for p in self._rdp), default=0.0)

    def remaining(self, party: str) -> float | None:
        """Budget left for ``party`` (``None`` without a budget)."""
        if self.budget is None:
            return None
        return max(0.0, self.budget.epsilon - self.epsilon(party))

    def exhausted(self, party: str) -> bool:
        """Whether ``party`` has spent its whole budget (always ``False`` without a budget)."""
        return self.budget is not None and self.epsilon(party) >= self.budget.epsilon

    def next_round(self, party: str) -> int:
        return sum(1 for r in self._history if r.party == party)

    # -- planning and recording --------------------------------------------------------------
    def plan_epsilon(
        self, *, party: str, noise_multiplier: float, sampling_rate: float, steps: int
    ) -> float:
        """The party's total ``epsilon`` if it ran these extra steps (nothing is recorded)."""
        record = GaussianRound(
            party, self.next_round(party), noise_multiplier, sampling_rate, steps
        )
        return self._epsilon(self._rdp.get(party, self._zero()) + self._record_rdp(record))

    def check_plan(
        self, *, party: str, noise_multiplier: float, sampling_rate: float, steps: int
    ) -> float:
        """Raise :class:`BudgetExceeded` if the plan would overspend under ``REFUSE``.

        Returns the planned total ``epsilon``. Under ``STOP`` it only reports.
        """
        total = self.plan_epsilon(
            party=party, noise_multiplier=noise_multiplier, sampling_rate=sampling_rate, steps=steps
        )
        budget = self.budget
        if budget is not None and budget.policy is BudgetPolicy.REFUSE and total > budget.epsilon:
            raise BudgetExceeded(
                f"plan for party {party!r} reaches epsilon {total:.4g} > budget "
                f"{budget.epsilon:g} at delta {self.delta:g}"
            )
        return total

    def step(
        self, *, party: str, noise_multiplier: float, sampling_rate: float, steps: int
    ) -> RoundReport:
        """Record one round of ``party`` and report its per-round and total ``epsilon``."""
        if self.exhausted(party):
            raise BudgetExceeded(f"privacy budget of party {party!r} is already spent")
        self.check_plan(
            party=party, noise_multiplier=noise_multiplier, sampling_rate=sampling_rate, steps=steps
        )
        record = GaussianRound(
            party, self.next_round(party), noise_multiplier, sampling_rate, steps
        )
        self._append(record)
        return self._report(record)

    def record(
        self, *, party: str, noise_multiplier: float, sampling_rate: float, steps: int
    ) -> RoundReport:
        """Record a round that has already run, without the budget check of :meth:`step`.

        For callers that enforce the policy themselves *before* running the round (the
        horizontal job checks the next round's total against the budget, with a slack for
        floating-point composition); the report still says whether the budget is spent.
        """
        record = GaussianRound(
            party, self.next_round(party), noise_multiplier, sampling_rate, steps
        )
        self._append(record)
        return self._report(record)

    def _append(self, record: GaussianRound) -> None:
        self._history.append(record)
        self._rdp[record.party] = self._rdp.get(record.party, self._zero()) + self._record_rdp(
            record
        )

    def _report(self, record: GaussianRound) -> RoundReport:
        return RoundReport(
            job_id=self.job_id,
            party=record.party,
            round=record.round,
            delta=self.delta,
            round_epsilon=self._epsilon(self._record_rdp(record)),
            total_epsilon=self.epsilon(record.party),
            budget_epsilon=None if self.budget is None else self.budget.epsilon,
            exhausted=self.exhausted(record.party),
        )

    def reports(self) -> list[RoundReport]:
        """Per-round reports for the whole history (totals as they were after each round)."""
        replay = RdpAccountant(
            delta=self.delta, job_id=self.job_id, budget=None, orders=self.orders
        )
        out = []
        for record in self._history:
            replay._append(record)
            report = replay._report(record)
            out.append(
                RoundReport(
                    **{
                        **asdict(report),
                        "budget_epsilon": None if self.budget is None else self.budget.epsilon,
                        "exhausted": self.budget is not None
                        and report.total_epsilon >= self.budget.epsilon,
                    }
                )
            )
        return out

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "version": _STATE_VERSION,
            "job_id": self.job_id,
            "delta": self.delta,
            "orders": list(self.orders),
            "budget": None
            if budget is None
            else {"epsilon": budget.epsilon, "policy": budget.policy.value},
            "history": [asdict(r) for r in self._history],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> RdpAccountant:
        """Rebuild an accountant from :meth:`to_dict` output (the RDP is recomputed)."""
        try:
            if state["version"] != _STATE_VERSION:
                raise ConfigError(f"accountant state version {state['version']!r} is unsupported")
            raw_budget = state["budget"]
            budget = (
                None
                if raw_budget is None
                else PrivacyBudget(
                    epsilon=float(raw_budget["epsilon"]),
                    policy=BudgetPolicy(raw_budget["policy"]),
                )
            )
            acc = cls(
                delta=float(state["delta"]),
                job_id=str(state["job_id"]),
                budget=budget,
                orders=tuple(float(a) for a in state["orders"]),
            )
            for raw in state["history"]:
                acc._append(
                    GaussianRound(
                        party=str(raw["party"]),
                        round=int(raw["round"]),
                        noise_multiplier=float(raw["noise_multiplier"]),
                        sampling_rate=float(raw["sampling_rate"]),
                        steps=int(raw["steps"]),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed accountant state: {exc}") from None
        return acc

    def save(self, path: str | Path) -> None:
        """Write the state as JSON atomically (temporary file, then rename)."""
        atomic_write(path, json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> RdpAccountant:
        """Resume from a file written by :meth:`save`."""
        try:
            state = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"accountant state {path} is not JSON: {exc.msg}") from None
        if not isinstance(state, dict):
            raise ConfigError(f"accountant state {path} is not a JSON object")
        return cls.from_dict(state)


def epsilon_across_jobs(accountants: Sequence[RdpAccountant], *, party: str, delta: float) -> float:
    """A party's total ``epsilon`` over several jobs that used the *same* records.

    Each job keeps its own accountant; when a party trains several jobs on one dataset their RDP
    curves add up (composition), so the guarantee for that dataset is the sum converted once.
    All accountants must use the same orders.
    """
    if not accountants:
        return 0.0
    orders = accountants[0].orders
    if any(acc.orders != orders for acc in accountants):
        raise ConfigError("accountants use different RDP orders and cannot be composed")
    total = sum((acc.rdp(party) for acc in accountants), np.zeros(len(orders)))
    return epsilon_from_rdp(orders=orders, rdp=total, delta=delta)[0]
