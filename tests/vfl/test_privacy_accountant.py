"""The accountant: per-party history, per-round vs total epsilon, budget, JSON persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vfl.errors import ConfigError
from vfl.privacy import (
    ACCOUNTANTS,
    BudgetExceeded,
    BudgetPolicy,
    PrivacyBudget,
    RdpAccountant,
    epsilon_across_jobs,
    epsilon_for_plan,
)

PLAN: dict[str, Any] = dict(noise_multiplier=1.1, sampling_rate=0.01, steps=200)


def test_composition_over_rounds_equals_one_long_plan() -> None:
    acc = RdpAccountant(delta=1e-5, job_id="job-1")
    reports = [acc.step(party="bank", **PLAN) for _ in range(5)]
    whole = epsilon_for_plan(noise_multiplier=1.1, sampling_rate=0.01, steps=1000, delta=1e-5)
    assert acc.epsilon("bank") == pytest.approx(whole, rel=1e-12)
    assert [r.round for r in reports] == [0, 1, 2, 3, 4]
    # per-round epsilon is constant and shown apart from the growing total
    assert len({r.round_epsilon for r in reports}) == 1
    totals = [r.total_epsilon for r in reports]
    assert totals == sorted(totals) and totals[0] == reports[0].round_epsilon
    assert totals[-1] < 5 * reports[0].round_epsilon  # RDP composes tighter than adding epsilons
    assert all(r.job_id == "job-1" and r.delta == 1e-5 for r in reports)
    assert acc.reports() == reports


def test_parties_are_accounted_separately() -> None:
    acc = RdpAccountant(delta=1e-5)
    acc.step(party="bank", **PLAN)
    acc.step(party="bank", **PLAN)
    acc.step(party="retailer", **PLAN)
    assert acc.parties == ("bank", "retailer")
    assert acc.epsilon("bank") > acc.epsilon("retailer") > 0
    assert acc.epsilon("insurer") == 0
    assert acc.job_epsilon() == acc.epsilon("bank")
    assert acc.next_round("retailer") == 1


def test_refuse_policy_refuses_a_plan_that_overspends_and_records_nothing() -> None:
    acc = RdpAccountant(delta=1e-5, budget=PrivacyBudget(epsilon=2.0))
    assert acc.check_plan(party="bank", **PLAN) < 2.0
    with pytest.raises(BudgetExceeded, match="budget"):
        acc.check_plan(party="bank", noise_multiplier=1.1, sampling_rate=0.01, steps=10_000)
    spent = 0
    with pytest.raises(BudgetExceeded):
        while True:
            acc.step(party="bank", **PLAN)
            spent += 1
    assert spent >= 1 and len(acc.history) == spent
    assert acc.epsilon("bank") <= 2.0
    assert not acc.exhausted("bank")
    remaining = acc.remaining("bank")
    assert remaining is not None and 0 <= remaining < 2.0


def test_stop_policy_records_the_crossing_round_then_stops() -> None:
    acc = RdpAccountant(delta=1e-5, budget=PrivacyBudget(epsilon=2.0, policy=BudgetPolicy.STOP))
    reports = []
    while not acc.exhausted("bank"):
        reports.append(acc.step(party="bank", **PLAN))
    assert reports[-1].exhausted and reports[-1].total_epsilon >= 2.0
    assert len(reports) >= 2
    assert not any(r.exhausted for r in reports[:-1])
    assert acc.remaining("bank") == 0
    with pytest.raises(BudgetExceeded, match="already spent"):
        acc.step(party="bank", **PLAN)
    assert acc.check_plan(party="bank", **PLAN) > 2.0  # STOP only reports


def test_state_round_trips_through_json_and_resumes(tmp_path: Path) -> None:
    budget = PrivacyBudget(epsilon=3.0, policy=BudgetPolicy.STOP)
    acc = RdpAccountant(delta=1e-6, job_id="job-7", budget=budget)
    acc.step(party="bank", **PLAN)
    acc.step(party="retailer", noise_multiplier=0.9, sampling_rate=0.02, steps=50)
    path = tmp_path / "privacy.json"
    acc.save(path)
    state = json.loads(path.read_text())
    assert state["version"] == 1 and len(state["history"]) == 2
    resumed = RdpAccountant.load(path)
    assert resumed.to_dict() == acc.to_dict()
    assert resumed.budget == budget and resumed.job_id == "job-7"
    assert resumed.epsilon("retailer") == acc.epsilon("retailer")
    report = resumed.step(party="bank", **PLAN)
    acc.step(party="bank", **PLAN)
    assert report.round == 1 and report.total_epsilon == acc.epsilon("bank")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": 99}', "version"),
        ('{"version": 1, "delta": 1e-5}', "malformed"),
    ],
)
def test_malformed_state_is_a_config_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        RdpAccountant.load(path)


def test_invalid_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="delta"):
        RdpAccountant(delta=0.0)
    with pytest.raises(ConfigError, match="budget"):
        PrivacyBudget(epsilon=-1.0)
    acc = RdpAccountant(delta=1e-5)
    with pytest.raises(ConfigError, match="sampling rate"):
        acc.step(party="bank", noise_multiplier=1.0, sampling_rate=0.0, steps=1)
    with pytest.raises(ConfigError, match="noise multiplier"):
        acc.step(party="bank", noise_multiplier=0.0, sampling_rate=0.1, steps=1)
    assert acc.history == ()


def test_registry() -> None:
    assert ACCOUNTANTS["rdp"] is RdpAccountant


def test_jobs_on_the_same_records_compose() -> None:
    first = RdpAccountant(delta=1e-5, job_id="job-1")
    second = RdpAccountant(delta=1e-5, job_id="job-2")
    first.step(party="bank", **PLAN)
    second.step(party="bank", **PLAN)
    second.step(party="retailer", **PLAN)
    both = epsilon_across_jobs([first, second], party="bank", delta=1e-5)
    whole = epsilon_for_plan(noise_multiplier=1.1, sampling_rate=0.01, steps=400, delta=1e-5)
    assert both == pytest.approx(whole, rel=1e-12)
    assert both > max(first.epsilon("bank"), second.epsilon("bank"))
    assert epsilon_across_jobs([], party="bank", delta=1e-5) == 0.0
    odd = RdpAccountant(delta=1e-5, orders=(2.0, 4.0))
    with pytest.raises(ConfigError, match="orders"):
        epsilon_across_jobs([first, odd], party="bank", delta=1e-5)


def test_record_skips_the_budget_check_but_reports_exhaustion() -> None:
    acc = RdpAccountant(delta=1e-5, budget=PrivacyBudget(epsilon=0.5))
    with pytest.raises(BudgetExceeded):
        acc.step(party="bank", **PLAN)
    report = acc.record(party="bank", **PLAN)  # the caller ran it: it must be counted
    assert report.total_epsilon > 0.5 and report.exhausted and acc.exhausted("bank")
    assert acc.epsilon("bank") == pytest.approx(
        epsilon_for_plan(noise_multiplier=1.1, sampling_rate=0.01, steps=200, delta=1e-5)
    )
