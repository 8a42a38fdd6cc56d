"""The aggregator's transport loop over a :class:`~protocols.channel.Channel`.

Synchronous rounds: sample (seeded), send each sampled client a :class:`TrainTask`, collect
:class:`ClientUpdate` s until the round's deadline; a client that does not answer in time is a
straggler (dropped from the round and recorded), one that is down is recorded as such, and an
update tagged with an earlier round is a late update and discarded. Fewer than ``min_clients``
valid updates leave the model unchanged. After the last round every client gets :class:`Finish`
and answers with its local metrics (before / after personalisation).

The asynchronous mode is :mod:`vfl.horizontal._buffered`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protocols.channel import Channel
from protocols.errors import ChannelTimeout, PeerDown, ProtocolError
from vfl.errors import VflError
from vfl.horizontal._checkpoint import save_checkpoint
from vfl.horizontal._heterogeneity import profile as heterogeneity_profile
from vfl.horizontal._messages import (
    TOPIC_PROFILE,
    TOPIC_REPORT,
    TOPIC_SECAGG_KEY,
    TOPIC_TASK,
    TOPIC_UPDATE,
    ClientReport,
    ClientUpdate,
    ProfileSummary,
    SecAggKey,
)
from vfl.horizontal._server import FedServer, RoundRecord

__all__ = [
    "FedResult",
    "run_aggregator",
    "run_round",
    "finish_clients",
    "Evaluate",
    "collect_profiles",
    "send_safely",
]

_log = logging.getLogger("vfl.horizontal")
Evaluate = Callable[[np.ndarray], Mapping[str, float]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class FedResult:
    """The outcome of a horizontal job at the aggregator."""

    params: np.ndarray
    history: tuple[RoundRecord, ...]
    events: tuple[dict[str, Any], ...]
    reports: dict[str, dict[str, float]]
    profile: dict[str, Any] | None

    def mean_report(self, key: str) -> float:
        """Mean of a client metric over the clients that reported it (NaN-free values only)."""
        vals = [r[key] for r in self.reports.values() if key in r and np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")


def send_safely(
    channel: Channel, server: FedServer, peer: str, topic: str, payload: Any, *, round: int
) -> str | None:
    """Send; on a transport failure return the reason (and record it) instead of raising."""
    try:
        channel.send(peer, topic, payload, round=round)
    except PeerDown:
        server.event("peer_down", client=peer, phase=topic)
        return "peer down"
    except ProtocolError as exc:
        server.event("send_failed", client=peer, phase=topic, error=str(exc))
        return f"send failed: {type(exc).__name__}"
    return None


def collect_profiles(
    channel: Channel, server: FedServer, *, timeout: float, now: Clock = time.monotonic
) -> dict[str, Any] | None:
    """Receive every client's :class:`ProfileSummary` and compute the heterogeneity profile."""
    deadline = now() + timeout
    counts: dict[str, dict[str, int]] = {}
    sketches: dict[str, np.ndarray] = {}
    for name in server.clients:
        try:
            msg = channel.recv(name, TOPIC_PROFILE, timeout=max(0.0, deadline - now()))
        except (ChannelTimeout, PeerDown) as exc:
            server.event("no_profile", client=name, reason=type(exc).__name__)
            continue
        if isinstance(msg, ProfileSummary):
            counts[name] = {str(k): int(v) for k, v in msg.label_counts.items()}
            sketches[name] = np.asarray(msg.quantiles, dtype=np.float64)
    if len(counts) < 2:
        return None
    try:
        report = heterogeneity_profile(counts, sketches)
    except (VflError, ValueError) as exc:  # a malformed sketch must not stop training
        server.event("profile_failed", error=str(exc))
        return None
    chi = report["label_chi_square"]
    _log.info(
        "heterogeneity: label chi2=%.1f dof=%d p=%.3g, max feature KS=%.3f",
        chi["statistic"],
        int(chi["dof"]),
        chi["p_value"],
        report.get("feature_ks_max", 0.0),
    )
    return report


def _collect(
    channel: Channel, server: FedServer, names: Sequence[str], *, deadline: float, now: Clock
) -> tuple[dict[str, ClientUpdate], dict[str, str], list[str]]:
    current = server.round + 1
    updates: dict[str, ClientUpdate] = {}
    dropped: dict[str, str] = {}
    late: list[str] = []
    for name in names:
        while True:
            try:
                msg = channel.recv(name, TOPIC_UPDATE, timeout=max(0.0, deadline - now()))
            except ChannelTimeout:
                dropped[name] = "deadline"
                server.event("straggler", client=name)
                break
            except PeerDown:
                dropped[name] = "peer down"
                server.event("peer_down", client=name, phase=TOPIC_UPDATE)
                break
            if not isinstance(msg, ClientUpdate):
                dropped[name] = f"malformed: {type(msg).__name__}"
                server.event("malformed", client=name, type=type(msg).__name__)
                break
            if msg.round != current:
                late.append(name)
                server.event("late_update", client=name, update_round=msg.round)
                continue
            updates[name] = msg
            server.note_heard(name)
            break
    return updates, dropped, late


def finish_clients(
    channel: Channel, server: FedServer, *, timeout: float, now: Clock
) -> dict[str, dict[str, float]]:
    """Send every client of ``server`` the final model; collect their reports until the deadline."""
    final = server.finish_message()
    reached = [
        c
        for c in server.clients
        if send_safely(channel, server, c, TOPIC_TASK, final, round=server.round) is None
    ]
    deadline = now() + timeout
    reports: dict[str, dict[str, float]] = {}
    for name in reached:
        try:
            while True:
                msg = channel.recv(name, TOPIC_REPORT, timeout=max(0.0, deadline - now()))
                if isinstance(msg, ClientReport):
                    reports[name] = {str(k): float(v) for k, v in msg.metrics.items()}
                    break
        except (ChannelTimeout, PeerDown) as exc:
            server.event("no_report", client=name, reason=type(exc).__name__)
    return reports


def _receive_key(
    channel: Channel, server: FedServer, name: str, deadline: float, now: Clock
) -> bool:
    """Read ``name``'s :class:`SecAggKey` (sent right after its profile) into ``server``."""
    try:
        msg = channel.recv(name, TOPIC_SECAGG_KEY, timeout=max(0.0, deadline - now()))
    except (ChannelTimeout, PeerDown) as exc:
        server.event("no_secagg_key", client=name, reason=type(exc).__name__)
        return False
    if not isinstance(msg, SecAggKey) or len(msg.public_key) != 32:
        server.event("malformed", client=name, type=type(msg).__name__)
        return False
    server.secagg_keys[name] = bytes(msg.public_key)
    return True


def run_round(
    channel: Channel,
    server: FedServer,
    *,
    evaluate: Evaluate | None = None,
    now: Clock = time.monotonic,
) -> RoundRecord:
    """One synchronous round: sample, send tasks, collect until the deadline, aggregate."""
    start = now()
    deadline = start + server.config.round_timeout
    sampled, excluded = server.sample()
    dropped: dict[str, str] = {}
    secure = server.config.secure_aggregation
    if secure:
        for name in sampled:
            if name not in server.secagg_keys and not _receive_key(
                channel, server, name, deadline, now
            ):
                dropped[name] = "no secure-aggregation key"
        targets = [n for n in sampled if n not in dropped]
        task = server.task({n: server.secagg_keys[n] for n in targets})
    else:
        targets = list(sampled)
        task = server.task()
    live: list[str] = []
    for name in targets:
        reason = send_safely(channel, server, name, TOPIC_TASK, task, round=task.round)
        if reason is None:
            live.append(name)
        else:
            dropped[name] = reason
    updates, more_dropped, late = _collect(channel, server, live, deadline=deadline, now=now)
    dropped.update(more_dropped)
    common: dict[str, Any] = {
        "sampled": sampled,
        "dropped": dropped,
        "late": late,
        "excluded": excluded,
        "seconds": now() - start,
        "bytes_down": int(task.params.nbytes) * len(live),
    }
    if secure:
        record = server.apply_secure(updates, participants=targets, **common)
    else:
        record = server.apply(updates, **common)
    if evaluate is not None:
        record = dataclasses.replace(record, metrics=dict(evaluate(server.params)))
        server.history[-1] = record
    return record


def run_aggregator(
    channel: Channel,
    server: FedServer,
    *,
    evaluate: Evaluate | None = None,
    checkpoint_dir: Path | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    now: Clock = time.monotonic,
) -> FedResult:
    """Run the remaining rounds of ``server`` (all of them, or those left after a resume)."""
    timeout = server.config.round_timeout
    profile = (
        collect_profiles(channel, server, timeout=timeout, now=now) if server.round == 0 else None
    )
    while not server.done:
        record = run_round(channel, server, evaluate=evaluate, now=now)
        if checkpoint_dir is not None:
            save_checkpoint(server, checkpoint_dir)
        if on_round is not None:
            on_round(record)
    reports = finish_clients(channel, server, timeout=timeout, now=now)
    return FedResult(
        server.params.copy(), tuple(server.history), tuple(server.events), reports, profile
    )
