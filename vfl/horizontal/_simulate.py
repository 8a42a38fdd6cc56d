"""Run a whole horizontal job in one process over the in-memory transport (signed envelopes,
transcript, fault injection), one thread per party: for tests, experiments and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.horizontal._aggregator import Evaluate, FedResult, run_aggregator
from vfl.horizontal._client import Participant, run_client
from vfl.horizontal._config import FedConfig
from vfl.horizontal._server import FedServer

__all__ = ["simulate", "AGGREGATOR_NAME"]

AGGREGATOR_NAME = "aggregator"


def simulate(
    participants: Mapping[str, Participant],
    config: FedConfig,
    initial_params: np.ndarray,
    *,
    evaluate: Evaluate | None = None,
    network: InMemoryNetwork | None = None,
    server: FedServer | None = None,
    checkpoint_dir: Path | None = None,
    job_id: str = "fedavg-sim",
    timeout: float = 600.0,
) -> FedResult:
    """Aggregator ``"aggregator"`` plus one thread per participant; returns the aggregator's result.

    Pass ``network`` to inject faults or read the transcript, ``server`` to resume from a
    checkpoint. In async mode the buffered loop of :mod:`vfl.horizontal._buffered` runs.
    """
    from vfl.horizontal._buffered import run_buffered_aggregator
    from vfl.horizontal._config import Mode

    names = sorted(participants)
    net = network or InMemoryNetwork([AGGREGATOR_NAME, *names], job_id=job_id, seed=config.seed)
    srv = server or FedServer(config, initial_params, clients=names)

    def agg(channel: Channel) -> FedResult:
        if config.mode is Mode.ASYNC:
            return run_buffered_aggregator(
                channel, srv, evaluate=evaluate, checkpoint_dir=checkpoint_dir
            )
        return run_aggregator(channel, srv, evaluate=evaluate, checkpoint_dir=checkpoint_dir)

    def client_fn(name: str) -> Callable[[Channel], Any]:
        return lambda ch: run_client(
            ch, participants[name], aggregator=AGGREGATOR_NAME, idle_timeout=timeout
        )

    fns: dict[str, Callable[[Channel], Any]] = {AGGREGATOR_NAME: agg}
    fns.update({n: client_fn(n) for n in names})
    results = run_parties(fns, network=net, timeout=timeout)
    out: FedResult = results[AGGREGATOR_NAME]
    return out
