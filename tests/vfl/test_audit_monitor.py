"""Monitoring: convergence math, alert rules, audited alerts and the Prometheus exposition."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vfl.governance import (
    AlertKind,
    AlertRules,
    AuditLog,
    EventKind,
    GovernanceError,
    Monitor,
    MonitoredRound,
    dropout_rate,
    evaluate_alerts,
    loss_deltas,
    render_prometheus,
    rounds_since_improvement,
    silent_parties,
    verify,
)

from ._governance_helpers import StepClock, key

PARTIES = ("a", "b", "c", "d", "e")


def _round(
    n: int, loss: float, *, responded: tuple[str, ...] = PARTIES, seconds: float = 1.0
) -> MonitoredRound:
    return MonitoredRound(
        round=n,
        metrics={"loss": loss, "auc": 0.5 + n / 100},
        seconds=seconds,
        expected=PARTIES,
        responded=responded,
        bytes_sent={"b": 100 * n},
        latency_seconds={"b": 0.01},
        encryption_seconds=seconds / 4,
    )


def test_convergence_helpers() -> None:
    assert loss_deltas([1.0, 0.5, 0.75]) == [-0.5, 0.25]
    assert rounds_since_improvement([1.0, 0.9, 0.95, 0.91], higher_is_better=False) == 2
    assert rounds_since_improvement([0.6, 0.7, 0.7], higher_is_better=True) == 1
    assert rounds_since_improvement([1.0, 0.99], higher_is_better=False, min_delta=0.05) == 1
    assert rounds_since_improvement([], higher_is_better=False) == 0


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30))
def test_strictly_improving_never_stale(values: list[float]) -> None:
    ordered = sorted(set(values), reverse=True)
    assert rounds_since_improvement(ordered, higher_is_better=False) == 0
    assert 0 <= rounds_since_improvement(values, higher_is_better=False) < len(values)


def test_dropout_and_silence() -> None:
    assert dropout_rate(_round(1, 1.0, responded=("a", "b", "c", "d"))) == pytest.approx(0.2)
    history = [_round(i, 1.0, responded=("a", "b", "c", "d")) for i in range(1, 3)]
    assert silent_parties(history, rounds=3) == []
    history.append(_round(3, 1.0, responded=("a", "b", "c")))
    assert silent_parties(history, rounds=3) == ["e"]


def test_alert_rules() -> None:
    rules = AlertRules(round_time_limit=2.0)
    losses = [1.0, 0.8, 0.9, 0.9, 0.85, 0.81, 0.95]
    history = [_round(i + 1, v) for i, v in enumerate(losses)]
    kinds = [a.kind for a in evaluate_alerts(history, rules)]
    assert kinds == [AlertKind.PLATEAU]
    history.append(_round(8, 0.5, responded=("a", "b", "c"), seconds=3.0))
    alerts = evaluate_alerts(history, rules)
    assert [a.kind for a in alerts] == [AlertKind.DROPOUTS, AlertKind.SLOW_ROUND]
    assert "40% of the parties dropped out" in alerts[0].message
    with pytest.raises(GovernanceError, match="max_dropout"):
        AlertRules(max_dropout=1.5)


def test_monitor_fires_once_and_audits(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.db", party="a", signing_key=key(1), now=StepClock())
    monitor = Monitor(job_id="j", party="a", audit_log=log)
    fired = []
    for n in range(1, 8):
        responded = PARTIES if n < 3 else ("a", "b", "c", "d")
        fired.append(
            [(x.kind, x.subject) for x in monitor.observe(_round(n, 1.0, responded=responded))]
        )
    assert fired[4] == [(AlertKind.SILENT_PARTY, "e")]  # round 5: e silent in rounds 3-5
    assert fired[5] == [(AlertKind.PLATEAU, "loss")]  # round 6: 5 rounds without improvement
    assert fired[6] == []  # conditions still hold: no repeat
    events = [r for r in log.records() if r.event == EventKind.ALERT]
    assert [e.details["kind"] for e in events] == ["silent_party", "plateau"]
    with pytest.raises(GovernanceError, match="does not follow"):
        monitor.observe(_round(3, 1.0))
    log.close()
    assert verify(tmp_path / "a.db", verify_key=key(1).verify_key).ok


def test_round_record_validation() -> None:
    with pytest.raises(GovernanceError, match="was not expected"):
        MonitoredRound(round=1, metrics={}, seconds=1.0, expected=("a",), responded=("z",))
    with pytest.raises(GovernanceError, match="start at 1"):
        MonitoredRound(round=0, metrics={}, seconds=1.0, expected=(), responded=())


_SAMPLE = re.compile(r'^[a-z_]+\{([a-z_]+="(?:[^"\\]|\\.)*",?)+\} (-?[0-9.e+-]+|NaN|[+-]Inf)$')


def test_prometheus_exposition() -> None:
    monitor = Monitor(job_id='job "1"', party="a")
    for n in (1, 2):
        monitor.observe(_round(n, 1.0 / n))
    text = render_prometheus(monitor)
    assert text.endswith("\n")
    lines = text.splitlines()
    for line in lines:
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or _SAMPLE.match(line), line
    assert 'vfl_rounds_total{job="job \\"1\\"",party="a"} 2' in lines
    assert 'vfl_model_metric{job="job \\"1\\"",metric="loss",party="a"} 0.5' in lines
    assert 'vfl_bytes_sent_total{job="job \\"1\\"",party="a",peer="b"} 300' in lines
    assert 'vfl_encryption_time_ratio{job="job \\"1\\"",party="a"} 0.25' in lines
    assert "# TYPE vfl_bytes_sent_total counter" in lines
