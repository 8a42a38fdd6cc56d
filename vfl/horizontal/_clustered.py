"""Clustered FL: one model per group of clients, grouped by a declared attribute or by the cosine
similarity of their updates.

Similarity clustering follows Sattler, Mueller & Samek, "Clustered Federated Learning:
Model-Agnostic Distributed Multitask Optimization Under Privacy Constraints" (IEEE TNNLS 2020):
clients whose data follow different conditional distributions send updates pointing in different
directions, so after ``warmup_rounds`` of ordinary FedAvg the last round's updates are grouped by
cosine similarity. The grouping itself is spherical k-means (Dhillon & Modha, "Concept
Decompositions for Large Sparse Text Data Using Clustering", Machine Learning 2001) on the unit
vectors ``u_i / ||u_i||``, seeded deterministically by farthest-point initialisation::

    assign(i) = argmax_c <u_i/||u_i||, mu_c>,   mu_c = normalise(sum_{i in c} u_i/||u_i||)

Then each group trains its own model from the warm-up model for the remaining rounds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from protocols.channel import Channel
from vfl.errors import ConfigError
from vfl.horizontal._aggregator import (
    Clock,
    Evaluate,
    FedResult,
    collect_profiles,
    finish_clients,
    run_round,
)
from vfl.horizontal._config import FedConfig
from vfl.horizontal._server import FedServer

__all__ = ["cosine_clusters", "ClusteredResult", "run_clustered_aggregator"]


def cosine_clusters(
    updates: Mapping[str, np.ndarray], *, k: int, iterations: int = 50
) -> dict[str, int]:
    """Spherical k-means of the updates' directions; returns ``{client: cluster index}``.

    Cluster indices are ordered by each cluster's first client name, so the result does not
    depend on dictionary order.

    >>> cosine_clusters({"a": np.array([1.0, 0.1]), "b": np.array([2.0, 0.0]),
    ...                  "c": np.array([-1.0, 0.0])}, k=2)
    {'a': 0, 'b': 0, 'c': 1}
    """
    names = sorted(updates)
    if not 1 <= k <= len(names):
        raise ConfigError(f"need 1 <= k <= number of clients, got k={k}, {len(names)} clients")
    u = np.stack([np.asarray(updates[n], dtype=np.float64).ravel() for n in names])
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-300)
    centres = [u[0]]
    for _ in range(1, k):
        closest = np.max(u @ np.stack(centres).T, axis=1)
        centres.append(u[int(np.argmin(closest))])
    mu = np.stack(centres)
    assign = np.argmax(u @ mu.T, axis=1)
    for _ in range(iterations):
        for c in range(k):
            members = u[assign == c]
            if members.size:
                total = members.sum(axis=0)
                mu[c] = total / max(float(np.linalg.norm(total)), 1e-300)
        new = np.argmax(u @ mu.T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
    order = {c: i for i, c in enumerate(dict.fromkeys(int(a) for a in assign))}
    return {n: order[int(a)] for n, a in zip(names, assign, strict=True)}


@dataclass(frozen=True)
class ClusteredResult:
    """Cluster of each client, the warm-up run, and one :class:`FedResult` per cluster."""

    assignments: dict[str, str]
    warmup: FedResult | None
    clusters: dict[str, FedResult]


def run_clustered_aggregator(
    channel: Channel,
    config: FedConfig,
    initial_params: np.ndarray,
    *,
    clients: list[str],
    groups: Mapping[str, str] | None = None,
    k: int = 2,
    warmup_rounds: int = 1,
    evaluate: Mapping[str, Evaluate] | Evaluate | None = None,
    now: Clock = time.monotonic,
) -> ClusteredResult:
    """Clustered FL at the aggregator. ``groups`` declares each client's cluster (an attribute
    such as a region); without it, ``warmup_rounds`` FedAvg rounds run and the clients are split
    into ``k`` clusters by update similarity. ``config.rounds`` counts warm-up rounds too.
    ``evaluate`` may be one function or one per cluster name."""
    if groups is None and not 1 <= warmup_rounds < config.rounds:
        raise ConfigError("clustering by similarity needs 1 <= warmup_rounds < rounds")
    all_clients = FedServer(config, initial_params, clients=clients)
    collect_profiles(channel, all_clients, timeout=config.round_timeout, now=now)
    warm: FedResult | None = None
    start_params = initial_params
    start_round = 0
    if groups is None:
        warm_cfg = dataclasses.replace(config, rounds=warmup_rounds)
        warm_server = FedServer(warm_cfg, initial_params, clients=clients)
        while not warm_server.done:
            run_round(channel, warm_server, now=now)
        labels = cosine_clusters(warm_server.last_updates, k=k)
        assignments = {n: f"cluster{c}" for n, c in labels.items()}
        unheard = sorted(set(clients) - set(assignments))
        if unheard:
            raise ConfigError(f"no warm-up update from {', '.join(unheard)}: cannot cluster them")
        warm = FedResult(
            warm_server.params.copy(), tuple(warm_server.history), tuple(warm_server.events), {},
            None,
        )  # fmt: skip
        start_params, start_round = warm_server.params, warm_server.round
    else:
        missing = sorted(set(clients) - set(groups))
        if missing:
            raise ConfigError(f"groups: no cluster declared for {', '.join(missing)}")
        assignments = {n: str(groups[n]) for n in clients}
    servers: dict[str, FedServer] = {}
    for cluster in sorted(set(assignments.values())):
        members = [n for n in clients if assignments[n] == cluster]
        server = FedServer(config, start_params, clients=members)
        server.round = start_round
        servers[cluster] = server
    while not all(s.done for s in servers.values()):
        for cluster, server in servers.items():
            if server.done:
                continue
            fn = evaluate.get(cluster) if isinstance(evaluate, Mapping) else evaluate
            run_round(channel, server, evaluate=fn, now=now)
    results: dict[str, FedResult] = {}
    for cluster, server in servers.items():
        reports = finish_clients(channel, server, timeout=config.round_timeout, now=now)
        results[cluster] = FedResult(
            server.params.copy(), tuple(server.history), tuple(server.events), reports, None
        )
    return ClusteredResult(assignments, warm, results)
