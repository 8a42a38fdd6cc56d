"""Clustered FL: groups found by update similarity (or declared) each get their own model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.errors import ConfigError
from vfl.horizontal import (
    FedClient,
    FedConfig,
    LocalTraining,
    LogisticModel,
    cosine_clusters,
    logistic_factory,
    run_client,
    run_clustered_aggregator,
)
from vfl.metrics import auc

D = 5
W = np.linspace(-1.5, 1.5, D)


def _data(n: int, seed: int, *, flipped: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    p = 1 / (1 + np.exp(-(x @ (-W if flipped else W))))
    return x, (rng.random(n) < p).astype(np.float64)


def _auc(params: np.ndarray, *, flipped: bool) -> float:
    x, y = _data(2000, 777, flipped=flipped)
    m = LogisticModel(D)
    m.set_params(params)
    return auc(y, m.predict_proba(x))


def test_cosine_clusters_separates_opposite_directions() -> None:
    rng = np.random.default_rng(0)
    ups = {f"a{i}": np.ones(4) + 0.1 * rng.normal(size=4) for i in range(3)}
    ups.update({f"b{i}": -np.ones(4) + 0.1 * rng.normal(size=4) for i in range(3)})
    got = cosine_clusters(ups, k=2)
    assert {got[f"a{i}"] for i in range(3)} == {0} and {got[f"b{i}"] for i in range(3)} == {1}
    assert set(cosine_clusters(ups, k=1).values()) == {0}
    with pytest.raises(ConfigError):
        cosine_clusters(ups, k=7)


def _run(groups: dict[str, str] | None) -> Any:
    names = [f"a{i}" for i in range(3)] + [f"b{i}" for i in range(3)]
    clients = {
        n: FedClient(*_data(400, i, flipped=n.startswith("b")), model_factory=logistic_factory(),
                     seed=i)
        for i, n in enumerate(names)
    }  # fmt: skip
    net = InMemoryNetwork(["aggregator", *names], job_id="cfl", seed=0)
    cfg = FedConfig(rounds=6, local=LocalTraining(epochs=1, learning_rate=0.1))

    def agg(ch: Channel) -> Any:
        return run_clustered_aggregator(
            ch, cfg, np.zeros(D + 1), clients=names, groups=groups, k=2, warmup_rounds=1
        )

    fns: dict[str, Any] = {"aggregator": agg}
    for n in names:
        fns[n] = lambda ch, n=n: run_client(ch, clients[n], aggregator="aggregator")
    return run_parties(fns, network=net, timeout=120)["aggregator"]


def test_clustered_fl_by_similarity_recovers_the_groups_and_fits_each() -> None:
    res = _run(None)
    a, b = res.assignments["a0"], res.assignments["b0"]
    assert a != b
    assert all(res.assignments[f"a{i}"] == a and res.assignments[f"b{i}"] == b for i in range(3))
    assert res.warmup is not None and len(res.warmup.history) == 1
    assert _auc(res.clusters[a].params, flipped=False) > 0.8
    assert _auc(res.clusters[b].params, flipped=True) > 0.8
    assert [h.round for h in res.clusters[a].history] == [2, 3, 4, 5, 6]
    assert set(res.clusters[a].reports) == {"a0", "a1", "a2"}


def test_clustered_fl_with_declared_groups() -> None:
    groups = {f"a{i}": "north" for i in range(3)} | {f"b{i}": "south" for i in range(3)}
    res = _run(groups)
    assert res.warmup is None and set(res.clusters) == {"north", "south"}
    assert _auc(res.clusters["north"].params, flipped=False) > 0.8
    assert _auc(res.clusters["south"].params, flipped=True) > 0.8
    assert len(res.clusters["north"].history) == 6
