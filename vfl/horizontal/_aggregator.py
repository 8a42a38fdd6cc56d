"""The aggregator's transport loop over a :class:`~protocols.channel.Channel`.

Synchronous rounds: sample (seeded), send each sampled client a :class:`TrainTask`, collect
:class:`ClientUpdate` s (or :class:`CompressedUpdate` s, decoded here) until the round's deadline; a client that does not answer in time is a
straggler (dropped from the round and recorded), one that is down is recorded as such, and an
update tagged with an earlier round is a late update and discarded. Fewer than ``min_clients``
valid updates leave the model unchanged. A secure round runs the steps of
:mod:`vfl.horizontal._secagg_round` instead of collecting updates in clear. ``bytes_down`` and
``bytes_up`` of a :class:`RoundRecord` are the encoded payload bytes of every message of the
round (the signed envelope adds a fixed header per message). After the last round every client
gets :class:`Finish` and answers with its local metrics (before / after personalisation).

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
from vfl.compression import payload_nbytes
from vfl.errors import VflError
from vfl.horizontal._checkpoint import save_checkpoint
from vfl.horizontal._compress import decode_update
from vfl.horizontal._heterogeneity import profile as heterogeneity_profile
from vfl.horizontal._messages import (
    TOPIC_PROFILE,
    TOPIC_REPORT,
    TOPIC_TASK,
    TOPIC_UPDATE,
    ClientReport,
    ClientUpdate,
    CompressedUpdate,
    ProfileSummary,
)
from vfl.horizontal._secagg_round import aggregate_secure_round
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
) -> tuple[dict[str, ClientUpdate], dict[str, str], list[str], int]:
    """Updates that arrived in time (decoded), dropouts, late senders and the bytes received."""
    current = server.round + 1
    updates: dict[str, ClientUpdate] = {}
    dropped: dict[str, str] = {}
    late: list[str] = []
    received = 0
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
            received += payload_nbytes(msg)
            if not isinstance(msg, ClientUpdate | CompressedUpdate):
                dropped[name] = f"malformed: {type(msg).__name__}"
                server.event("malformed", client=name, type=type(msg).__name__)
                break
            if msg.round != current:
                late.append(name)
                server.event("late_update", client=name, update_round=msg.round)
                continue
            try:
                updates[name] = decode_update(msg, width=server.params.size)
            except VflError as exc:
                dropped[name] = f"malformed: {exc}"
                server.event("malformed", client=name, type=type(msg).__name__, error=str(exc))
                break
            server.note_heard(name)
            break
    return updates, dropped, late, received


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


RING8_HEADROOM = 2.0
"""``q8`` under secure aggregation: the 8-bit ring holds ``RING8_HEADROOM`` times the largest
coordinate of the previous round's sum."""


def ring8_step(scale: float) -> float:
    """Step of the 8-bit secure ring: ``RING8_HEADROOM * scale / 127`` (the sum must stay within
    127 steps; the first secure round, with no scale yet, runs in the 64-bit ring)."""
    return RING8_HEADROOM * scale / 127.0


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
    task = server.task()
    if task.secure and task.compression == "q8" and server.secure_scale > 0:
        task = dataclasses.replace(task, secure_step=ring8_step(server.secure_scale))
    task_bytes = payload_nbytes(task)
    live: list[str] = []
    for name in sampled:
        reason = send_safely(channel, server, name, TOPIC_TASK, task, round=task.round)
        if reason is None:
            live.append(name)
        else:
            dropped[name] = reason
    common: dict[str, Any] = {"sampled": sampled, "excluded": excluded}
    if server.config.secure_aggregation:
        out = aggregate_secure_round(
            channel, live, round=task.round, width=server.params.size, deadline=deadline,
            reveal_timeout=server.config.round_timeout, job=channel.party,
            clipped=task.clip_norm > 0, step=task.secure_step, now=now,
        )  # fmt: skip
        if out.total is not None:
            server.secure_scale = float(np.max(np.abs(out.total), initial=0.0))
        for entry in out.events:
            server.event(entry["event"], **{k: v for k, v in entry.items() if k != "event"})
        for name, reason in out.dropped.items():
            server.event("secagg_dropout", client=name, reason=reason)
        dropped.update(out.dropped)
        record = server.apply_secure(
            out.total, weight=out.weight, survivors=out.survivors, dropped=dropped,
            rejected=out.rejected, failure=out.failure, seconds=now() - start,
            bytes_down=task_bytes * len(live) + out.bytes_down, bytes_up=out.bytes_up,
            samples=out.samples, **common,
        )  # fmt: skip
    else:
        updates, more_dropped, late, received = _collect(
            channel, server, live, deadline=deadline, now=now
        )
        dropped.update(more_dropped)
        record = server.apply(
            updates, dropped=dropped, late=late, seconds=now() - start,
            bytes_down=task_bytes * len(live), **common,
        )  # fmt: skip
        record = dataclasses.replace(record, bytes_up=received)
        server.history[-1] = record
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
