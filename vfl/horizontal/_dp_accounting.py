"""Privacy accounting of a horizontal job: each client's own accountant, and the job's view.

* :class:`ClientPrivacy` runs inside a client (``dp = "record"``). It is the authority for the
  client's rows: it derives the plan from the job file (never from the aggregator's task), runs
  DP-SGD, records every round's steps in its :class:`~vfl.privacy.RdpAccountant`, persists the
  state after every round and refuses a round that would overspend the budget.
* :class:`JobPrivacy` runs inside the aggregator. Every party reads the same job file and the
  plan depends only on it (the Poisson rate ``q`` is a job setting, not ``batch / rows``), so the
  aggregator accounts each client exactly as the client does: every client sampled in a round is
  charged one round (conservative: a straggler may have trained). It reports ``(epsilon,
  delta)`` every round -- the round's own epsilon and the running total apart -- enforces the
  budget policy for the job (``refuse`` before the first round, ``stop`` before a round that
  would overspend) and, for ``dp = "central"``, clips and noises the aggregate.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crypto.random import RandomSource
from vfl._atomic import atomic_write
from vfl.errors import ConfigError
from vfl.horizontal._dp import DpMode, DpPlan, DpSpec, PerSampleModel, dp_sgd_train, plan_dp
from vfl.horizontal._models import LocalModel, LocalTraining
from vfl.privacy import (
    BudgetExceeded,
    BudgetPolicy,
    PrivacyBudget,
    RdpAccountant,
    RoundReport,
    central_dp,
    clip_l2,
)

__all__ = ["ClientPrivacy", "JobPrivacy", "BUDGET_SLACK"]

_log = logging.getLogger("vfl.horizontal")
_STATE_VERSION = 1

BUDGET_SLACK = 1e-9
"""Relative slack when comparing a total with the budget: a plan derived to meet ``epsilon``
exactly composes round by round to the same total up to floating-point rounding."""


def _budget(spec: DpSpec) -> PrivacyBudget | None:
    if spec.epsilon is None:
        return None
    return PrivacyBudget(epsilon=spec.epsilon, policy=spec.budget_policy)


def _over(total: float, budget: PrivacyBudget | None) -> bool:
    return budget is not None and total > budget.epsilon * (1 + BUDGET_SLACK)


def _write_json(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(state, indent=1))


def _load_accountant(path: Path, spec: DpSpec) -> RdpAccountant:
    acc = RdpAccountant.load(path)
    if acc.delta != spec.delta:
        raise ConfigError(f"privacy state {path} was written for delta {acc.delta:g}")
    acc.budget = _budget(spec)  # the job file decides the budget; the history is kept
    return acc


class ClientPrivacy:
    """Record-level DP-SGD and the privacy budget of one client (see the module docstring).

    ``state_path`` (e.g. ``run_dir/privacy.json``): loaded when it exists, so a restarted client
    continues its epsilon; written after every round. Under ``refuse`` the constructor raises
    :class:`~vfl.privacy.BudgetExceeded` when the remaining rounds would overspend.
    """

    def __init__(
        self,
        spec: DpSpec,
        *,
        party: str,
        rounds: int,
        local_epochs: int,
        job_id: str = "",
        state_path: Path | None = None,
        rng: RandomSource | None = None,
    ) -> None:
        if spec.mode is not DpMode.RECORD:
            raise ConfigError("ClientPrivacy runs record-level DP-SGD (dp = 'record')")
        self.spec = spec
        self.party = party
        self.plan = plan_dp(spec, rounds=rounds, local_epochs=local_epochs)
        self.state_path = state_path
        self._rng = rng
        if state_path is not None and state_path.is_file():
            self.accountant = _load_accountant(state_path, spec)
        else:
            self.accountant = RdpAccountant(delta=spec.delta, job_id=job_id, budget=_budget(spec))
        self.reports: list[RoundReport] = []
        left = rounds - self.accountant.next_round(party)
        if left > 0 and spec.budget_policy is BudgetPolicy.REFUSE:
            total = self._planned(left)
            if _over(total, self.accountant.budget):
                raise BudgetExceeded(
                    f"party {party!r}: {left} more rounds reach epsilon {total:.4g} > budget "
                    f"{spec.epsilon:g} at delta {spec.delta:g}"
                )

    def _planned(self, rounds: int) -> float:
        return self.accountant.plan_epsilon(
            party=self.party,
            noise_multiplier=self.plan.noise_multiplier,
            sampling_rate=self.plan.sampling_rate,
            steps=rounds * self.plan.steps_per_round,
        )

    @property
    def epsilon(self) -> float:
        """This client's total epsilon so far (at ``spec.delta``)."""
        return self.accountant.epsilon(self.party)

    def train(
        self, model: LocalModel, x: np.ndarray, y: np.ndarray, *, settings: LocalTraining
    ) -> RoundReport:
        """One round of DP-SGD; records it, saves the state, returns the round's report.

        Raises :class:`~vfl.privacy.BudgetExceeded` (before training) if the round would
        overspend the budget.
        """
        if not isinstance(model, PerSampleModel):
            raise ConfigError(f"{type(model).__name__} gives no per-sample gradients for DP-SGD")
        total = self._planned(1)
        budget = self.accountant.budget
        if _over(total, budget):
            assert budget is not None
            raise BudgetExceeded(
                f"party {self.party!r}: the next round would reach epsilon {total:.4g} > "
                f"budget {budget.epsilon:g}"
            )
        steps = dp_sgd_train(
            model,
            x,
            y,
            settings=settings,
            plan=self.plan,
            clip_norm=self.spec.max_grad_norm,
            secure=self.spec.secure_noise,
            rng=self._rng,
        )
        report = self.accountant.record(  # the budget was checked above, with the slack
            party=self.party,
            noise_multiplier=self.plan.noise_multiplier,
            sampling_rate=self.plan.sampling_rate,
            steps=steps,
        )
        self.reports.append(report)
        if self.state_path is not None:
            self.accountant.save(self.state_path)
        _log.info(
            "%s: DP-SGD round %d: epsilon %.4f this round, %.4f in total (delta %g)",
            self.party, report.round + 1, report.round_epsilon, report.total_epsilon,
            self.spec.delta,
        )  # fmt: skip
        return report

    def summary(self) -> dict[str, Any]:
        """The ``privacy`` block of this client's result JSON."""
        history = self.accountant.reports()
        mine = [r for r in history if r.party == self.party]
        return {
            "mode": self.spec.mode.value,
            "party": self.party,
            "epsilon": self.epsilon,
            "delta": self.spec.delta,
            "epsilon_per_round": [r.round_epsilon for r in mine],
            "epsilon_cumulative": [r.total_epsilon for r in mine],
            **_plan_summary(self.plan, self.spec),
        }


def _plan_summary(plan: DpPlan, spec: DpSpec) -> dict[str, Any]:
    """The plan and budget settings both result blocks (client and aggregator) report."""
    return {
        "planned_epsilon": plan.epsilon,
        "noise_multiplier": plan.noise_multiplier,
        "sampling_rate": plan.sampling_rate,
        "steps_per_round": plan.steps_per_round,
        "max_grad_norm": spec.max_grad_norm,
        "budget_epsilon": spec.epsilon,
        "budget_policy": spec.budget_policy.value,
    }


class JobPrivacy:
    """The aggregator's accounting of every client, the job's budget policy, and central DP."""

    def __init__(
        self,
        spec: DpSpec,
        *,
        clients: Sequence[str],
        rounds: int,
        local_epochs: int,
        expected_per_round: int,
        rng: RandomSource | None = None,
    ) -> None:
        if expected_per_round < 1:
            raise ConfigError("expected clients per round must be >= 1")
        self.spec = spec
        self.clients = tuple(clients)
        self.plan = plan_dp(spec, rounds=rounds, local_epochs=local_epochs)
        self.expected_per_round = expected_per_round
        self.accountant = RdpAccountant(delta=spec.delta, budget=_budget(spec))
        self.rounds: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.state_path: Path | None = None
        self._rng = rng

    @property
    def central(self) -> bool:
        """Whether the aggregator clips and noises the aggregate (``dp = "central"``)."""
        return self.spec.mode is DpMode.CENTRAL

    # -- persistence --------------------------------------------------------------------------
    def attach(self, path: Path, *, rounds_done: Sequence[tuple[int, Sequence[str]]] = ()) -> bool:
        """Persist to ``path`` after every round; resume from it if it exists (returns whether).

        Without the file, ``rounds_done`` (``(round, sampled clients)`` of the rounds a resumed
        checkpoint already ran) is charged again, so a lost state file never lowers epsilon.
        """
        self.state_path = path
        if not path.is_file():
            for number, sampled in rounds_done:
                self.record_round(number, sampled)
            return False
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            if state["version"] != _STATE_VERSION:
                raise ConfigError(f"privacy state {path}: unsupported version {state['version']!r}")
            acc = RdpAccountant.from_dict(state["accountant"])
            rounds = [dict(r) for r in state["rounds"]]
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"privacy state {path} is malformed: {exc}") from None
        if acc.delta != self.spec.delta:
            raise ConfigError(f"privacy state {path} was written for delta {acc.delta:g}")
        acc.budget = _budget(self.spec)
        self.accountant, self.rounds = acc, rounds
        return True

    def save(self) -> None:
        if self.state_path is not None:
            state = {
                "version": _STATE_VERSION,
                "accountant": self.accountant.to_dict(),
                "rounds": self.rounds,
            }
            _write_json(self.state_path, state)

    # -- budget -------------------------------------------------------------------------------
    def _planned(self, client: str, rounds: int) -> float:
        return self.accountant.plan_epsilon(
            party=client,
            noise_multiplier=self.plan.noise_multiplier,
            sampling_rate=self.plan.sampling_rate,
            steps=rounds * self.plan.steps_per_round,
        )

    def check_start(self, *, rounds_left: int) -> float:
        """Under ``refuse``, raise :class:`~vfl.privacy.BudgetExceeded` if ``rounds_left`` more
        rounds would overspend any client's budget; returns the planned job epsilon."""
        if rounds_left <= 0:
            return self.accountant.job_epsilon()
        worst = max(self._planned(c, rounds_left) for c in self.clients)
        if self.spec.budget_policy is BudgetPolicy.REFUSE and _over(worst, self.accountant.budget):
            raise BudgetExceeded(
                f"the plan reaches epsilon {worst:.4g} > budget {self.spec.epsilon:g} at delta "
                f"{self.spec.delta:g} ({rounds_left} rounds, noise multiplier "
                f"{self.plan.noise_multiplier:.4g}); raise the budget or the noise, or train less"
            )
        return worst

    def should_stop(self) -> bool:
        """Whether the next round would overspend some client's budget (sets ``stop_reason``)."""
        if self.stop_reason is not None:
            return True
        budget = self.accountant.budget
        if budget is None:
            return False
        worst = max(self._planned(c, 1) for c in self.clients)
        if _over(worst, budget):
            self.stop_reason = (
                f"privacy budget: the next round would reach epsilon {worst:.4g} > budget "
                f"{budget.epsilon:g} at delta {self.spec.delta:g}"
            )
            _log.warning("training stops: %s", self.stop_reason)
            return True
        return False

    # -- per round ----------------------------------------------------------------------------
    def record_round(self, round: int, trained: Sequence[str]) -> dict[str, float]:
        """Charge every client in ``trained`` one round; the round's figures, per-round and
        cumulative apart (the worst client's)."""
        round_eps = 0.0
        for name in sorted(trained):  # the policy was enforced before the round (should_stop)
            report = self.accountant.record(
                party=name,
                noise_multiplier=self.plan.noise_multiplier,
                sampling_rate=self.plan.sampling_rate,
                steps=self.plan.steps_per_round,
            )
            round_eps = max(round_eps, report.round_epsilon)
        entry = {
            "round": float(round),
            "epsilon_round": round_eps,
            "epsilon": self.accountant.job_epsilon(),
            "delta": self.spec.delta,
        }
        self.rounds.append(entry)
        self.save()
        _log.info(
            "round %d: privacy epsilon %.4f this round, %.4f in total at delta %g%s",
            round, round_eps, entry["epsilon"], self.spec.delta,
            "" if self.spec.epsilon is None else f" (budget {self.spec.epsilon:g})",
        )  # fmt: skip
        return {k: v for k, v in entry.items() if k != "round"}

    def central_aggregate(self, updates: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(sum_i clip(delta_i, C) + N(0, (z C)^2)) / m`` with ``m`` the expected clients per
        round (uniform weights: a client's weight must not depend on its data)."""
        if self.spec.mode is not DpMode.CENTRAL:
            raise ConfigError("central_aggregate needs dp = 'central'")
        if not updates:
            raise ConfigError("central DP needs at least one update")
        total: np.ndarray | None = None
        for name in sorted(updates):
            clipped, _ = clip_l2(updates[name], clip_norm=self.spec.max_grad_norm)
            total = clipped if total is None else total + clipped
        assert total is not None
        noisy = central_dp(
            total,
            clip_norm=self.spec.max_grad_norm,
            noise_multiplier=self.plan.noise_multiplier,
            divide_by=float(self.expected_per_round),
            secure=self.spec.secure_noise,
            rng=self._rng,
        )
        return noisy

    def summary(self) -> dict[str, Any]:
        """The ``privacy`` block of the aggregator's result JSON."""
        return {
            "mode": self.spec.mode.value,
            "epsilon": self.accountant.job_epsilon(),
            "delta": self.spec.delta,
            "epsilon_per_round": [r["epsilon_round"] for r in self.rounds],
            "epsilon_cumulative": [r["epsilon"] for r in self.rounds],
            "per_client": {c: self.accountant.epsilon(c) for c in self.clients},
            **_plan_summary(self.plan, self.spec),
            "stopped_early": self.stop_reason is not None,
            "stop_reason": self.stop_reason,
        }
