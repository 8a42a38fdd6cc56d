"""One party of a horizontal job as its own OS process over gRPC + mutual TLS.

    python -m vfl.cli._fedavg_party --config federation.toml --party c01 --job J \\
        --role client --data c01.csv
    python -m vfl.cli._fedavg_party --config federation.toml --party agg --job J \\
        --role aggregator --data test.csv --clients c01,c02,... --rounds 20

The aggregator evaluates the global model on ``--data`` after every round. Each process prints
one line ``RESULT {json}`` on stdout (the aggregator's rounds, events and test AUC; a client's
rounds trained and its report). ``--inject-crash-at-round K`` is fault injection for tests and
benchmarks: the client SIGKILLs itself on receiving round K's task, i.e. dies mid-round; with
``--inject-crash-at-send TOPIC`` (``TOPIC:after``) it dies instead of (right after) its first
send on ``TOPIC`` in round K, e.g. ``fl/secagg-advertise:after`` (between advertise and roster of
a secure round). ``--secure`` (aggregator) turns on secure aggregation.
"""

from __future__ import annotations

import protocols  # noqa: F401 - first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import protocols.grpc
from protocols.channel import Channel
from protocols.config import load_federation
from protocols.limits import InboxLimits
from vfl.horizontal import (
    ClientReport,
    ClientUpdate,
    FedClient,
    FedConfig,
    FedServer,
    Finish,
    LocalTraining,
    LogisticModel,
    ProfileSummary,
    RoundRecord,
    TrainTask,
    logistic_factory,
    run_aggregator,
    run_client,
)
from vfl.horizontal._messages import FEDAVG_TOPICS
from vfl.metrics import auc

__all__ = ["main"]


class _CrashingClient:
    """Kills its own process (SIGKILL) when the task of ``round`` arrives."""

    def __init__(self, inner: FedClient, round: int) -> None:
        self.inner = inner
        self.round = round

    def summary(self) -> ProfileSummary:
        return self.inner.summary()

    def fit(self, task: TrainTask) -> ClientUpdate:
        if task.round == self.round:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.fit(task)

    def finish(self, final: Finish) -> ClientReport:
        return self.inner.finish(final)


class _CrashingChannel(Channel):
    """Delegates to ``inner``; SIGKILLs the process before (or right after) the first send on
    ``topic`` in ``round``."""

    def __init__(self, inner: Channel, topic: str, *, after: bool, round: int) -> None:
        self.inner, self.topic, self.after, self.round = inner, topic, after, round

    @property
    def party(self) -> str:
        return self.inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self.inner.peers

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        hit = topic == self.topic and round == self.round
        if hit and not self.after:
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner.send(peer, topic, payload, round=round)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        return self.inner.recv(peer, topic, timeout=timeout)

    def attest(self, statement: bytes) -> bytes:
        return self.inner.attest(statement)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self.inner.check_attestation(signer, statement, signature)

    def switch_session(self, session_id: str) -> None:
        self.inner.switch_session(session_id)

    def close(self) -> None:
        self.inner.close()


def _xy(path: Path, label: str) -> tuple[np.ndarray, np.ndarray]:
    df = pd.read_csv(path)
    feats = [c for c in df.columns if c not in ("id", label)]
    return df[feats].to_numpy(np.float64), df[label].to_numpy(np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vfl.cli._fedavg_party")
    p.add_argument("--config", required=True, type=Path)
    p.add_argument("--party", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--role", required=True, choices=["aggregator", "client"])
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--label", default="y")
    p.add_argument("--aggregator", default="aggregator", help="the aggregator's party name")
    p.add_argument("--clients", default="", help="comma-separated client names (aggregator)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--round-timeout", type=float, default=10.0)
    p.add_argument("--aggregation", default="fedavg")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--heartbeat", type=float, default=1.0)
    p.add_argument("--inject-crash-at-round", type=int, default=0)
    p.add_argument("--inject-crash-at-send", default="", help="TOPIC or TOPIC:after")
    p.add_argument("--secure", action="store_true", help="secure aggregation (aggregator)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = load_federation(args.config)
    node = protocols.grpc.PartyNode(config, args.party, heartbeat_interval=args.heartbeat).start()
    channel = node.channel(
        args.job, send_timeout=args.round_timeout, default_timeout=10 * args.round_timeout,
        limits=InboxLimits.for_topics(FEDAVG_TOPICS),
    )  # fmt: skip
    x, y = _xy(args.data, args.label)
    out: dict[str, Any]
    try:
        if args.role == "aggregator":
            out = _aggregate(args, channel, x, y)
        else:
            client = FedClient(
                x, y, model_factory=logistic_factory(), seed=args.seed + sum(args.party.encode())
            )
            who: Any = client
            chan: Channel = channel
            if args.inject_crash_at_send:
                topic, _, when = args.inject_crash_at_send.partition(":")
                chan = _CrashingChannel(channel, topic, after=when == "after",
                                        round=args.inject_crash_at_round or 1)  # fmt: skip
            elif args.inject_crash_at_round:
                who = _CrashingClient(client, args.inject_crash_at_round)
            res = run_client(chan, who, aggregator=args.aggregator, idle_timeout=600.0)
            out = {
                "rounds_trained": list(res.rounds_trained),
                "report": None if res.report is None else res.report.metrics,
            }
        out = {"ok": True, **out}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as JSON
        out = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    print("RESULT " + json.dumps(out), flush=True)
    channel.close()
    node.stop(grace=1.0)
    return 0 if out["ok"] else 1


def _aggregate(
    args: argparse.Namespace, channel: Any, x: np.ndarray, y: np.ndarray
) -> dict[str, Any]:
    clients = [c for c in args.clients.split(",") if c]
    cfg = FedConfig(
        rounds=args.rounds,
        round_timeout=args.round_timeout,
        aggregator=args.aggregation,
        local=LocalTraining(epochs=1, learning_rate=0.1),
        seed=args.seed,
        secure_aggregation=args.secure,
    )
    server = FedServer(cfg, np.zeros(x.shape[1] + 1), clients=clients)
    model = LogisticModel(x.shape[1])

    def evaluate(params: np.ndarray) -> dict[str, float]:
        model.set_params(params)
        return {"test_auc": auc(y, model.predict_proba(x))}

    def progress(record: RoundRecord) -> None:
        print(f"ROUND {json.dumps(record.to_json())}", flush=True)

    res = run_aggregator(channel, server, evaluate=evaluate, on_round=progress)
    return {
        "rounds": [r.to_json() for r in res.history],
        "events": list(res.events),
        "reports": res.reports,
        "test_auc": evaluate(res.params)["test_auc"],
    }


if __name__ == "__main__":
    sys.exit(main())
