"""The per-round records of one job at one party: traffic, events, status, audit, alerts.

:class:`RoundLog` is the round half of :class:`vfl.jobs.JobTracker`: each finished epoch or
round becomes one ``round`` event line, a status update, a ``round_metrics`` audit record (and
``epsilon_spent`` with DP), the contribution log (docs/governance.md, "Contribution log") and the
monitor's alerts (plateau, dropouts, silent party, slow round).

Per round it also records the share of time in crypto (``crypto_seconds``: the wall time the
job's thread spent in the public Paillier / CKKS calls during the round, from
:mod:`crypto.timing`) and the heartbeat latency to each peer when the transport has a heartbeat
monitor (gRPC).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crypto import timing
from vfl.governance import (
    AlertRules,
    AuditLog,
    EventKind,
    Monitor,
    MonitoredRound,
    record_epsilon_spent,
    record_round_metrics,
)
from vfl.jobs._kinds import kind_of
from vfl.jobs._metered import MeteredChannel, PeerTraffic
from vfl.jobs._runfiles import RunFiles, jsonable
from vfl.jobs._spec import Job
from vfl.jobs._views import number, roles, weight_shares

__all__ = ["CONTRIBUTION_EVENT", "RoundLog", "RoundTraffic"]

#: Audit event of the per-round (and end-of-job) contribution log.
CONTRIBUTION_EVENT = EventKind.CONTRIBUTION.value

# Metrics the plateau rule may watch, in order of preference: (name, higher is better).
_WATCHED = (
    ("loss", False),
    ("val_logloss", False),
    ("test_logloss", False),
    ("val_auc", True),
    ("test_auc", True),
    ("val_accuracy", True),
    ("accuracy", True),
)


@dataclass(frozen=True)
class RoundTraffic:
    """Bytes per peer in one round (the difference of two traffic snapshots) and who was heard."""

    sent: Mapping[str, int]
    received: Mapping[str, int]
    expected: tuple[str, ...]
    heard: tuple[str, ...]

    @property
    def dropped(self) -> list[str]:
        return sorted(set(self.expected) - set(self.heard))


def round_traffic(
    before: Mapping[str, PeerTraffic],
    after: Mapping[str, PeerTraffic],
    *,
    expected: Sequence[str],
    responded: Sequence[str] | None,
) -> RoundTraffic:
    """The round's bytes per peer; heard = ``responded`` (the aggregator knows), else every
    expected peer this party received bytes from."""
    sent = {p: t.bytes_sent - before.get(p, PeerTraffic()).bytes_sent for p, t in after.items()}
    received = {
        p: t.bytes_received - before.get(p, PeerTraffic()).bytes_received for p, t in after.items()
    }
    heard = (
        [p for p in expected if received.get(p, 0) > 0]
        if responded is None
        else [p for p in responded if p in expected]
    )
    return RoundTraffic(sent, received, tuple(expected), tuple(heard))


def observed_contributions(
    job: Job,
    party: str,
    traffic: RoundTraffic,
    *,
    seconds: float,
    waited: Mapping[str, float],
) -> dict[str, dict[str, Any]]:
    """What a vertical party sees each party contribute in a round: itself, the bytes it sent
    and its compute time (the round's ``seconds`` not spent blocked in ``recv``); each
    expected peer, the bytes received from it and the time spent waiting for it (that peer's
    compute plus the network, as seen from here)."""
    role = roles(job)
    blocked = sum(waited.values())
    out: dict[str, dict[str, Any]] = {
        party: {
            "role": role.get(party),
            "bytes_sent": int(sum(traffic.sent.values())),
            "compute_seconds": max(0.0, seconds - blocked),
        }
    }
    for peer in traffic.expected:
        out[peer] = {
            "role": role.get(peer),
            "bytes_sent": int(traffic.received.get(peer, 0)),
            "waited_seconds": max(0.0, waited.get(peer, 0.0)),
        }
    return out


class RoundLog:
    """Records the rounds of one job at one party (module docstring).

    ``status`` updates ``status.json`` (the tracker's, which adds traffic per peer); ``metrics``
    is the tracker's running dict of latest metric values, updated in place; ``epsilon`` gives
    the privacy cost paid up front (label DP), carried by every round event."""

    def __init__(
        self,
        job: Job,
        *,
        party: str,
        peers: Sequence[str],
        channel: MeteredChannel,
        audit: AuditLog,
        files: RunFiles,
        status: Callable[..., None],
        metrics: dict[str, float],
        epsilon: Callable[[], float | None],
    ) -> None:
        self.job, self.party, self.peers = job, party, list(peers)
        self.channel, self.audit, self.files = channel, audit, files
        self._status, self._metrics, self._epsilon = status, metrics, epsilon
        self.count = 0
        self.monitor: Monitor | None = None
        self._last_traffic: dict[str, PeerTraffic] = {}
        self._round_seconds = 0.0
        self._crypto_seconds = 0.0
        # A vertical kind (label party + feature parties over aligned rows) vs. horizontal.
        kind = kind_of(job.job.type)
        self._vertical = kind.aligns and kind.needs_label

    def start(self) -> None:
        """Training starts: round 1's traffic counts from here, not with the PSI before it."""
        self._last_traffic = self.channel.traffic()

    def expected_peers(self) -> list[str]:
        """Who this party hears from every round: the label party hears every feature party, a
        feature party the label party, the aggregator the sampled clients."""
        if self._vertical and self.party != self.job.job.label_party:
            return [str(self.job.job.label_party)]
        return list(self.peers)

    def record(
        self,
        *,
        metrics: Mapping[str, float],
        seconds: float,
        expected: Sequence[str] | None = None,
        responded: Sequence[str] | None = None,
        epsilon: float | None = None,
        epsilon_round: float | None = None,
        delta: float | None = None,
        crypto_seconds: float | None = None,
        contributions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """One finished epoch / round (:meth:`vfl.jobs.JobTracker.round` documents the keys)."""
        window = time.perf_counter() - max(0.0, seconds)
        if crypto_seconds is None:
            crypto_seconds = timing.thread_elapsed_since(window)
        self.count += 1
        now = self.channel.traffic()
        traffic = round_traffic(
            self._last_traffic,
            now,
            expected=self.expected_peers() if expected is None else expected,
            responded=responded,
        )
        waited = self.channel.waited_since(window)
        self._last_traffic = now
        values = {k: float(v) for k, v in metrics.items() if number(v) is not None}
        self._metrics.update(values)
        self._event(traffic, values, seconds, epsilon, epsilon_round, crypto_seconds)
        if contributions is None and self._vertical:
            contributions = observed_contributions(
                self.job, self.party, traffic, seconds=seconds, waited=waited
            )
        if contributions:
            self.contributions(self.count, contributions)
        self._round_seconds += max(0.0, seconds)
        self._crypto_seconds += max(0.0, crypto_seconds)
        self._update_status(values, epsilon, delta)
        self._audit(traffic, values, epsilon)
        self._alerts(traffic, values, seconds, crypto_seconds)

    def _event(
        self,
        traffic: RoundTraffic,
        values: Mapping[str, float],
        seconds: float,
        epsilon: float | None,
        epsilon_round: float | None,
        crypto_seconds: float,
    ) -> None:
        self.files.event(
            "round",
            round=self.count,
            metrics=dict(values),
            seconds=seconds,
            bytes_sent=sum(traffic.sent.values()),
            bytes_received=sum(traffic.received.values()),
            participants=sorted({self.party, *traffic.heard}),
            dropped=traffic.dropped,
            epsilon=self._epsilon() if epsilon is None else epsilon,
            epsilon_round=epsilon_round,
            crypto_seconds=crypto_seconds,
            latency_ms=self.channel.latency_ms() or None,
        )

    def _update_status(
        self, values: Mapping[str, float], epsilon: float | None, delta: float | None
    ) -> None:
        total = self.files.status["total_rounds"]
        status: dict[str, Any] = {
            "round": self.count,
            "metrics": dict(values),
            "crypto_seconds": self._crypto_seconds,
            "crypto_share": (
                self._crypto_seconds / self._round_seconds if self._round_seconds > 0 else None
            ),
        }
        if isinstance(total, int) and self.count > total:
            status["total_rounds"] = None
        if epsilon is not None:
            status["epsilon"] = epsilon
        if delta is not None:
            status["delta"] = delta
        self._status(**status)

    def _audit(
        self, traffic: RoundTraffic, values: Mapping[str, float], epsilon: float | None
    ) -> None:
        record_round_metrics(
            self.audit,
            job_id=self.job.job.id,
            round=self.count,
            metrics=dict(values),
            actor=self.party,
            payload={
                "bytes_sent": dict(traffic.sent),
                "bytes_received": dict(traffic.received),
                "dropped": traffic.dropped,
            },
        )
        if epsilon is not None:
            record_epsilon_spent(
                self.audit,
                job_id=self.job.job.id,
                epsilon=epsilon,
                delta=number(self.files.status.get("delta")) or 0.0,
                round=self.count,
                actor=self.party,
            )

    def _alerts(
        self,
        traffic: RoundTraffic,
        values: Mapping[str, float],
        seconds: float,
        crypto_seconds: float,
    ) -> None:
        record = MonitoredRound(
            round=self.count,
            metrics=dict(values),
            seconds=max(0.0, seconds),
            expected=tuple(sorted({self.party, *traffic.expected})),
            responded=tuple(sorted({self.party, *traffic.heard})),
            bytes_sent=dict(traffic.sent),
            encryption_seconds=max(0.0, crypto_seconds or 0.0),
        )
        for alert in self._monitor(values).observe(record):
            self.files.event("alert", alert=str(alert.kind), message=alert.message)

    def contributions(
        self, round_number: int | None, contributions: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """One ``contribution`` event per party and one audit record for the round
        (``round_number`` ``None``: the end-of-job summary)."""
        figures = {str(p): jsonable(dict(v)) for p, v in sorted(contributions.items())}
        for party, values in figures.items():
            self.files.event("contribution", round=round_number, party=party, **values)
        self.audit.append(
            CONTRIBUTION_EVENT,
            {"job_id": self.job.job.id, "round": round_number, "contributions": figures},
            actor=self.party,
        )

    def model_contributions(self, norms: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """End of a hetero LR job: each party's weight-block norm and its share of the squared
        norm (:func:`weight_shares`), as ``contribution`` events (``round`` null) and an audit
        record; returns ``{party: {"weight_norm", "weight_share"}}``."""
        shares = weight_shares(norms)
        role = roles(self.job)
        out = {p: {"weight_norm": float(norms[p]), "weight_share": shares[p]} for p in shares}
        self.contributions(None, {p: {"role": role.get(p), **v} for p, v in out.items()})
        return out

    def _monitor(self, metrics: Mapping[str, float]) -> Monitor:
        if self.monitor is None:
            watched = next(((m, hi) for m, hi in _WATCHED if m in metrics), ("loss", False))
            section = self.job.monitor
            rules = AlertRules(
                metric=watched[0],
                higher_is_better=watched[1],
                plateau_rounds=section.plateau_rounds,
                min_delta=section.min_delta,
                max_dropout=section.max_dropout,
                silent_rounds=section.silent_rounds,
                round_time_limit=section.round_time_limit,
            )
            self.monitor = Monitor(
                job_id=self.job.job.id, party=self.party, rules=rules, audit_log=self.audit
            )
        return self.monitor
