"""Asynchronous buffered aggregation (FedBuff: Nguyen et al., "Federated Learning with Buffered
Asynchronous Aggregation", AISTATS 2022, Alg. 1) for unreliable or slow clients.

``concurrency`` clients train at once, each from the model version current when its task was
sent. Updates are buffered as they arrive; every ``buffer_size`` updates the model moves by their
aggregate, each weighted by ``n_i * reputation_i / (1 + staleness_i)^a`` (staleness = model
versions since the task was sent) for ``fedavg``, and the client that answered gets a new task at
once. A client silent for ``round_timeout`` seconds is dropped from its task and recorded; an update
more than ``max_staleness`` versions old is discarded as late. Compressed updates are decoded on
arrival; a record's ``bytes_down`` / ``bytes_up`` are the encoded task and update payloads of its
window.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from protocols.channel import Channel
from protocols.errors import ChannelTimeout, PeerDown
from vfl.compression import payload_nbytes
from vfl.errors import VflError
from vfl.horizontal._aggregator import (
    Clock,
    Evaluate,
    FedResult,
    collect_profiles,
    finish_clients,
    send_safely,
)
from vfl.horizontal._checkpoint import save_checkpoint
from vfl.horizontal._compress import decode_update
from vfl.horizontal._messages import TOPIC_TASK, TOPIC_UPDATE, ClientUpdate, CompressedUpdate
from vfl.horizontal._server import FedServer, RoundRecord

__all__ = ["run_buffered_aggregator"]


def run_buffered_aggregator(
    channel: Channel,
    server: FedServer,
    *,
    evaluate: Evaluate | None = None,
    checkpoint_dir: Path | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    max_staleness: int = 10,
    poll_interval: float = 0.005,
    now: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FedResult:
    """Run ``server.config.rounds`` buffered model updates; returns like ``run_aggregator``."""
    cfg = server.config
    profile = (
        collect_profiles(channel, server, timeout=cfg.round_timeout, now=now)
        if server.round == 0
        else None
    )
    rng = np.random.default_rng([cfg.seed, 0xA5, server.round])
    active: dict[str, tuple[int, float]] = {}  # client -> (task round, sent at)
    buffer: dict[str, ClientUpdate] = {}
    dropped: dict[str, str] = {}
    late: list[str] = []
    wire = {"down": 0, "up": 0}  # encoded payload bytes of the current window
    window_start = now()

    def dispatch() -> None:
        idle = [
            c
            for c in server.clients
            if c not in active and c not in buffer and not server.reputation.excluded(c)
        ]
        while idle and len(active) < cfg.concurrency:
            name = idle.pop(int(rng.integers(len(idle))))
            task = server.task()
            if send_safely(channel, server, name, TOPIC_TASK, task, round=task.round) is None:
                active[name] = (task.round, now())
                wire["down"] += payload_nbytes(task)
            else:
                dropped[name] = "peer down"

    dispatch()
    while not server.done:
        heard = False
        for name in sorted(active):
            task_round, sent_at = active[name]
            try:
                msg = channel.recv(name, TOPIC_UPDATE, timeout=0.0)
            except ChannelTimeout:
                if now() - sent_at > cfg.round_timeout:
                    del active[name]
                    dropped[name] = "deadline"
                    server.event("straggler", client=name)
                continue
            except PeerDown:
                del active[name]
                dropped[name] = "peer down"
                server.event("peer_down", client=name, phase=TOPIC_UPDATE)
                continue
            heard = True
            wire["up"] += payload_nbytes(msg)
            if not isinstance(msg, ClientUpdate | CompressedUpdate) or msg.round != task_round:
                late.append(name)
                server.event("late_update", client=name)
                continue
            del active[name]
            try:
                msg = decode_update(msg, width=server.params.size)
            except VflError as exc:
                dropped[name] = f"malformed: {exc}"
                server.event("malformed", client=name, error=str(exc))
                continue
            if server.round + 1 - msg.round > max_staleness:
                late.append(name)
                server.event("stale_update", client=name, staleness=server.round + 1 - msg.round)
                continue
            server.note_heard(name)
            buffer[name] = msg
        if len(buffer) >= cfg.buffer_size:
            version = server.round + 1
            stale = {n: version - u.round for n, u in buffer.items()}
            record = server.apply(
                dict(buffer),
                sampled=sorted(buffer),
                dropped=dict(dropped),
                late=list(late),
                seconds=now() - window_start,
                bytes_down=wire["down"],
                staleness=stale,
            )
            record = dataclasses.replace(
                record,
                metrics={f"staleness/{n}": float(s) for n, s in sorted(stale.items())},
                bytes_up=wire["up"],
            )
            wire.update(down=0, up=0)
            if evaluate is not None:
                record = dataclasses.replace(
                    record, metrics={**record.metrics, **dict(evaluate(server.params))}
                )
            server.history[-1] = record
            buffer.clear()
            dropped.clear()
            late.clear()
            window_start = now()
            if checkpoint_dir is not None:
                save_checkpoint(server, checkpoint_dir)
            if on_round is not None:
                on_round(record)
        if not server.done:
            dispatch()
            if not active and not buffer:
                server.event("no_clients")
                break
        if not heard:
            sleep(poll_interval)
    # Collect what is still in flight so no update is left on the wire, then finish.
    for name, (_, sent_at) in sorted(active.items()):
        try:
            channel.recv(
                name, TOPIC_UPDATE, timeout=max(0.0, cfg.round_timeout - (now() - sent_at))
            )
        except (ChannelTimeout, PeerDown):
            server.event("no_final_update", client=name)
    reports = finish_clients(channel, server, timeout=cfg.round_timeout, now=now)
    return FedResult(
        server.params.copy(), tuple(server.history), tuple(server.events), reports, profile
    )
