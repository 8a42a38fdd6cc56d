"""The horizontal protocol over the in-memory transport: correctness against a plain reference,
deadlines, stragglers, late updates, dead clients, rejoin, reputation, checkpoints, async mode,
Byzantine clients and the transcript (what each party received)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from protocols.channel import Channel
from protocols.errors import PeerDown
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.horizontal import (
    AGGREGATOR_NAME,
    Attack,
    ByzantineClient,
    ClientUpdate,
    FedClient,
    FedConfig,
    FedServer,
    Finish,
    LocalTraining,
    LogisticModel,
    Mode,
    TrainTask,
    ValidationPolicy,
    load_checkpoint,
    logistic_factory,
    mlp_factory,
    run_aggregator,
    run_client,
    simulate,
)
from vfl.horizontal._robust import weighted_mean
from vfl.metrics import auc

D = 6


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = np.linspace(-1.5, 1.5, D)
    x = rng.normal(size=(n, D))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ w + 0.3)))).astype(np.float64)
    return x, y


X_TEST, Y_TEST = _data(2000, 999)


def _clients(k: int, *, n: int = 300) -> dict[str, FedClient]:
    return {
        f"c{i}": FedClient(*_data(n, i), model_factory=logistic_factory(), seed=i) for i in range(k)
    }


def _auc(params: np.ndarray) -> float:
    m = LogisticModel(D)
    m.set_params(params)
    return auc(Y_TEST, m.predict_proba(X_TEST))


def _evaluate(params: np.ndarray) -> dict[str, float]:
    return {"auc": _auc(params)}


LOCAL = LocalTraining(epochs=1, learning_rate=0.1, batch_size=32)


def test_fedavg_equals_the_plain_reference_and_learns() -> None:
    cfg = FedConfig(rounds=4, local=LOCAL, round_timeout=30.0)
    result = simulate(_clients(3), cfg, np.zeros(D + 1), evaluate=_evaluate)
    # The same computation without any network: same seeds, same order of local training.
    ref_clients = _clients(3)
    params = np.zeros(D + 1)
    for r in range(1, 5):
        task = TrainTask(r, params, 1, 0.1, 32, 0.0, 0.0)
        ups = [ref_clients[n].fit(task) for n in sorted(ref_clients)]
        w = np.array([u.num_samples for u in ups], dtype=np.float64)
        params = params + weighted_mean(np.stack([u.delta for u in ups]), w)
    np.testing.assert_allclose(result.params, params, rtol=1e-12, atol=1e-12)
    assert [h.round for h in result.history] == [1, 2, 3, 4]
    assert all(h.accepted == ("c0", "c1", "c2") and not h.dropped for h in result.history)
    assert result.history[-1].metrics["auc"] > 0.75
    # The encoded updates as received: the float64 parameters plus a small codec header each.
    assert 3 * (D + 1) * 8 < result.history[0].bytes_up <= 3 * ((D + 1) * 8 + 256)
    assert set(result.reports) == {"c0", "c1", "c2"}
    assert result.profile is not None and result.profile["clients"] == ["c0", "c1", "c2"]


def test_clients_receive_only_global_models() -> None:
    """Leakage table: a client's inbox holds TrainTask/Finish (global parameters) only."""
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id="leak", seed=0)
    simulate(_clients(3), FedConfig(rounds=2, local=LOCAL), np.zeros(D + 1), network=net)
    for c in ("c0", "c1", "c2"):
        got = net.transcript.received_by(c)
        assert got and {m.sender for m in got} == {AGGREGATOR_NAME}
        assert all(isinstance(m.payload, TrainTask | Finish) for m in got)
    to_agg = net.transcript.received_by(AGGREGATOR_NAME)
    updates = [m for m in to_agg if m.topic == "fl/update"]
    assert len(updates) == 6 and all(isinstance(m.payload, ClientUpdate) for m in updates)
    assert all(m.round == m.payload.round for m in updates)


def test_sampling_is_seeded_and_respects_clients_per_round() -> None:
    cfg = FedConfig(rounds=5, clients_per_round=2, local=LOCAL, seed=7)
    a = simulate(_clients(5), cfg, np.zeros(D + 1))
    b = simulate(_clients(5), cfg, np.zeros(D + 1))
    assert [h.sampled for h in a.history] == [h.sampled for h in b.history]
    assert all(len(h.sampled) == 2 for h in a.history)
    assert len({h.sampled for h in a.history}) > 1
    np.testing.assert_array_equal(a.params, b.params)


class _SlowInRound1(FedClient):
    def fit(self, task: TrainTask) -> ClientUpdate:
        if task.round == 1:
            time.sleep(2.6)  # past round 1's 2 s deadline, well inside round 2's
        return super().fit(task)


@pytest.mark.slow
def test_straggler_dropped_then_late_update_discarded_then_rejoins() -> None:
    clients: dict[str, Any] = dict(_clients(2))
    clients["c2"] = _SlowInRound1(*_data(300, 2), model_factory=logistic_factory(), seed=2)
    cfg = FedConfig(rounds=3, local=LOCAL, round_timeout=2.0)
    result = simulate(clients, cfg, np.zeros(D + 1), evaluate=_evaluate)
    first = result.history[0]
    assert first.dropped == {"c2": "deadline"} and first.accepted == ("c0", "c1")
    assert result.history[1].late == ("c2",)
    kinds = [(e["event"], e.get("client")) for e in result.events]
    assert ("straggler", "c2") in kinds and ("late_update", "c2") in kinds
    assert ("rejoined", "c2") in kinds
    assert result.history[-1].accepted == ("c0", "c1", "c2")


def test_killed_client_does_not_stop_the_round() -> None:
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id="kill", seed=0)
    clients = _clients(3)

    class DiesInRound2:
        def __init__(self, inner: FedClient) -> None:
            self.inner = inner

        def summary(self) -> Any:
            return self.inner.summary()

        def fit(self, task: TrainTask) -> ClientUpdate:
            if task.round == 2:
                net.kill("c1")
                raise PeerDown("c1 crashed mid-round")
            return self.inner.fit(task)

        def finish(self, final: Finish) -> Any:
            return self.inner.finish(final)

    cfg = FedConfig(rounds=3, local=LOCAL, round_timeout=20.0)
    server = FedServer(cfg, np.zeros(D + 1), clients=sorted(clients))
    parts: dict[str, Any] = {"c0": clients["c0"], "c1": DiesInRound2(clients["c1"]),
                             "c2": clients["c2"]}  # fmt: skip

    def client(name: str) -> Any:
        def fn(ch: Channel) -> str:
            try:
                run_client(ch, parts[name], aggregator=AGGREGATOR_NAME, idle_timeout=60)
            except PeerDown:
                return "down"
            return "ok"

        return fn

    fns: dict[str, Any] = {AGGREGATOR_NAME: lambda ch: run_aggregator(ch, server)}
    fns.update({n: client(n) for n in parts})
    out = run_parties(fns, network=net, timeout=120)
    result = out[AGGREGATOR_NAME]
    assert out["c1"] == "down" and out["c0"] == out["c2"] == "ok"
    assert [h.round for h in result.history] == [1, 2, 3]
    assert result.history[1].dropped == {"c1": "peer down"}
    assert result.history[1].accepted == ("c0", "c2") and not result.history[1].skipped
    assert result.history[2].dropped == {"c1": "peer down"}
    assert any(e["event"] == "peer_down" and e["client"] == "c1" for e in result.events)
    assert set(result.reports) == {"c0", "c2"}


def test_min_clients_skips_the_round_and_keeps_the_model() -> None:
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1"], job_id="min", seed=0)
    net.faults.drop(sender="c1", topic="fl/update", count=1)
    cfg = FedConfig(rounds=2, local=LOCAL, min_clients=2, round_timeout=1.5)
    result = simulate(_clients(2), cfg, np.zeros(D + 1), network=net)
    assert result.history[0].skipped and result.history[0].dropped == {"c1": "deadline"}
    assert not result.history[1].skipped
    assert any(e["event"] == "skipped" for e in result.events)


class _NaNClient(FedClient):
    def fit(self, task: TrainTask) -> ClientUpdate:
        up = super().fit(task)
        return ClientUpdate(up.round, np.full_like(up.delta, np.nan), up.num_samples)


def test_a_bad_sample_count_is_rejected() -> None:
    server = FedServer(FedConfig(rounds=1), np.zeros(3), clients=["a", "b"])
    record = server.apply(
        {"a": ClientUpdate(1, np.ones(3), 10), "b": ClientUpdate(1, np.ones(3), -5)},
        sampled=["a", "b"],
        dropped={},
    )
    assert record.accepted == ("a",) and "num_samples" in record.rejected["b"]
    np.testing.assert_array_equal(server.params, np.ones(3))


def test_invalid_updates_are_rejected_and_lower_reputation_until_excluded() -> None:
    clients: dict[str, Any] = dict(_clients(3))
    clients["bad"] = _NaNClient(*_data(300, 50), model_factory=logistic_factory(), seed=50)
    cfg = FedConfig(rounds=5, local=LOCAL)
    result = simulate(clients, cfg, np.zeros(D + 1), evaluate=_evaluate)
    assert result.history[0].rejected == {"bad": "non-finite values"}
    assert np.all(np.isfinite(result.params)) and result.history[-1].metrics["auc"] > 0.75
    # 1.0 -> 0.5 -> 0.25 -> 0.125 (< 0.2): excluded from sampling from round 4 on.
    assert "bad" in result.history[3].excluded and "bad" not in result.history[3].sampled
    assert sum(e["event"] == "rejected" for e in result.events) == 3


@pytest.mark.parametrize("attack", list(Attack))
def test_byzantine_clients_robust_aggregator_holds(attack: Attack) -> None:
    def federation() -> dict[str, Any]:
        clients: dict[str, Any] = dict(_clients(10, n=200))
        for name in ("c0", "c1"):
            clients[name] = ByzantineClient(clients[name], attack, n_clients=10, n_byzantine=2)
        return clients

    no_norm = ValidationPolicy()
    clean = simulate(_clients(10, n=200), FedConfig(rounds=8, local=LOCAL), np.zeros(D + 1))
    robust = simulate(
        federation(),
        FedConfig(rounds=8, local=LOCAL, aggregator="centered_clip", validation=no_norm),
        np.zeros(D + 1),
    )
    assert _auc(robust.params) > _auc(clean.params) - 0.02
    if attack is not Attack.ALIE:
        plain = simulate(
            federation(), FedConfig(rounds=8, local=LOCAL, validation=no_norm), np.zeros(D + 1)
        )
        assert _auc(plain.params) < _auc(clean.params) - 0.02


def test_checkpoint_and_resume(tmp_path: Path) -> None:
    ckpt = tmp_path / "ckpt"
    cfg3 = FedConfig(rounds=3, local=LOCAL, aggregator="centered_clip")
    before = FedServer(cfg3, np.zeros(D + 1), clients=["c0", "c1", "c2"])
    first = simulate(_clients(3), cfg3, np.zeros(D + 1), server=before, checkpoint_dir=ckpt)
    assert (ckpt / "aggregator.npz").is_file() and (ckpt / "aggregator.json").is_file()
    cfg6 = FedConfig(rounds=6, local=LOCAL, aggregator="centered_clip")
    server = FedServer(cfg6, np.zeros(D + 1), clients=["c0", "c1", "c2"])
    assert load_checkpoint(server, ckpt)
    assert server.round == 3
    np.testing.assert_array_equal(server.params, first.params)
    saved, loaded = before.aggregator.state(), server.aggregator.state()
    assert sorted(saved) == sorted(loaded) and "center" in loaded
    for key, value in saved.items():
        np.testing.assert_array_equal(loaded[key], value)
    assert server.reputation.as_dict() == before.reputation.as_dict()
    assert [h.to_json() for h in server.history] == [h.to_json() for h in before.history]
    resumed = simulate(_clients(3), cfg6, np.zeros(D + 1), server=server, checkpoint_dir=ckpt)
    assert [h.round for h in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert resumed.profile is None  # profiled once, before the first round
    other = FedServer(cfg6, np.zeros(D + 2), clients=["c0", "c1", "c2"])
    with pytest.raises(Exception, match="do not fit"):
        load_checkpoint(other, ckpt)
    wrong = FedServer(FedConfig(rounds=6), np.zeros(D + 1), clients=["c0", "c1", "c2"])
    with pytest.raises(Exception, match="aggregator"):
        load_checkpoint(wrong, ckpt)
    assert not load_checkpoint(wrong, tmp_path / "none")


def test_async_buffered_mode_updates_with_staleness() -> None:
    cfg = FedConfig(
        rounds=6, local=LOCAL, mode=Mode.ASYNC, buffer_size=2, concurrency=3, round_timeout=30
    )
    result = simulate(_clients(4), cfg, np.zeros(D + 1), evaluate=_evaluate)
    assert len(result.history) == 6
    assert all(len(h.accepted) >= 2 for h in result.history)
    assert result.history[-1].metrics["auc"] > 0.75
    assert all(any(k.startswith("staleness/") for k in h.metrics) for h in result.history)
    assert set(result.reports) == {"c0", "c1", "c2", "c3"}


@pytest.mark.slow
def test_fedprox_and_personalisation_run_on_a_torch_model() -> None:
    torch.set_num_threads(1)
    factory = mlp_factory(hidden=(8,), seed=0)
    clients = {f"c{i}": FedClient(*_data(300, i), model_factory=factory, seed=i) for i in range(3)}
    init = factory(D).get_params()
    assert init.dtype == np.float32
    cfg = FedConfig(
        rounds=3,
        local=LocalTraining(epochs=1, learning_rate=0.1, batch_size=32, mu=0.1),
        personalise_epochs=1,
    )
    model = factory(D)

    def evaluate(p: np.ndarray) -> dict[str, float]:
        model.set_params(p)
        return {"auc": auc(Y_TEST, model.predict_proba(X_TEST))}

    result = simulate(clients, cfg, init, evaluate=evaluate)
    assert result.params.dtype == np.float32 and not np.array_equal(result.params, init)
    assert result.history[-1].metrics["auc"] > evaluate(init)["auc"]
    assert all({"auc_global", "auc_personalised"} <= set(r) for r in result.reports.values())


def test_fedprox_keeps_local_models_closer_to_the_global_one() -> None:
    x, y = _data(300, 3)
    far = FedClient(x, y, model_factory=logistic_factory(), seed=0)
    near = FedClient(x, y, model_factory=logistic_factory(), seed=0)
    start = np.zeros(D + 1)
    d0 = far.local_update(start, LocalTraining(epochs=5, learning_rate=0.5))
    d1 = near.local_update(start, LocalTraining(epochs=5, learning_rate=0.5, mu=1.0))
    assert np.linalg.norm(d1) < np.linalg.norm(d0)
