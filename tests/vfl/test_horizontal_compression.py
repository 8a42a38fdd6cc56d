"""Compressed updates in FedAvg runs: clients compress (error feedback kept per client), the
aggregator decodes, and the round records carry the bytes that really crossed the channel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.compression import SparseArray, TopK, payload_nbytes
from vfl.errors import ConfigError, VflError
from vfl.horizontal import (
    AGGREGATOR_NAME,
    ClientUpdate,
    FedClient,
    FedConfig,
    LocalTraining,
    LogisticModel,
    Mode,
    TrainTask,
    logistic_factory,
    parse_fedavg_model,
    run_fedavg_job,
    simulate,
)
from vfl.horizontal._compress import UpdateEncoder, decode_update
from vfl.horizontal._messages import CompressedUpdate
from vfl.jobs import parse_job
from vfl.metrics import auc

D = 400
LOCAL = LocalTraining(epochs=1, learning_rate=0.05, batch_size=64)
TRUE_W = np.random.default_rng(123).normal(size=D) / np.sqrt(D) * 3


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ TRUE_W)))).astype(np.float64)
    return x, y


def _clients() -> dict[str, Any]:
    return {
        f"c{i}": FedClient(*_data(600, i), model_factory=logistic_factory(), seed=i)
        for i in range(3)
    }


def _auc(params: np.ndarray) -> float:
    x, y = _data(2000, 99)
    model = LogisticModel(D)
    model.set_params(params)
    return auc(y, model.predict_proba(x))


def _run(compression: str, rounds: int = 6) -> tuple[Any, InMemoryNetwork]:
    cfg = FedConfig(rounds=rounds, local=LOCAL, compression=compression, compression_ratio=0.1)
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id=f"cmp-{compression}", seed=0)
    return simulate(_clients(), cfg, np.zeros(D + 1), network=net), net


def test_every_compression_trains_with_fewer_bytes_on_the_channel() -> None:
    plain, plain_net = _run("none")
    plain_up = plain.history[0].bytes_up
    base_auc = _auc(plain.params)
    assert base_auc > 0.8
    # A 401-entry float64 update: the payload headers (field names, array headers) are a visible
    # share of a small compressed update, so these ratios are below the large-model ones.
    expected_ratio = {"q8": 4.5, "q4": 6.5, "topk": 6.5, "topk+q8": 5.5, "sketch": 7.5}
    for name, ratio in expected_ratio.items():
        res, net = _run(name)
        assert all(not h.skipped and len(h.accepted) == 3 for h in res.history)
        # bytes_up is what the aggregator received on fl/update, encoded as on the wire.
        sent = [m.payload for m in net.transcript.received_by(AGGREGATOR_NAME)
                if m.topic == "fl/update"]  # fmt: skip
        assert all(isinstance(u, CompressedUpdate) for u in sent)
        assert sum(h.bytes_up for h in res.history) == sum(payload_nbytes(u) for u in sent)
        assert plain_up / res.history[0].bytes_up >= ratio, name
        # The task carries the setting's name, else the downlink is unchanged.
        assert abs(res.history[0].bytes_down - plain.history[0].bytes_down) < 3 * 16
        if name == "sketch":  # dense updates do not survive a 10 % count sketch (docs)
            continue
        slack = 0.01 if name.startswith("q") else 0.05
        assert _auc(res.params) > base_auc - slack, name
    assert plain_net.transcript  # the uncompressed run went over the same channel


def test_q8_updates_are_unbiased_around_the_plain_run() -> None:
    plain, _ = _run("none", rounds=2)
    q8, _ = _run("q8", rounds=2)
    err = np.linalg.norm(q8.params - plain.params) / np.linalg.norm(plain.params)
    assert 0 < err < 0.05


def test_the_encoder_keeps_error_feedback_per_client_and_restarts_on_a_new_setting() -> None:
    enc = UpdateEncoder(seed=0)
    task = TrainTask(1, np.zeros(50), 1, 0.1, 32, 0.0, 0.0, compression="topk",
                     compression_ratio=0.1)  # fmt: skip
    rng = np.random.default_rng(0)
    deltas = [rng.normal(size=50) for _ in range(4)]
    sent = []
    for r, d in enumerate(deltas, start=1):
        out = enc.encode(ClientUpdate(r, d, 10), task)
        assert isinstance(out, CompressedUpdate)
        sent.append(decode_update(out, width=50).delta)
    codec = enc._codec
    assert isinstance(codec, TopK) and codec.residual is not None
    # Error feedback: what was sent plus what is held back is exactly what was produced.
    np.testing.assert_allclose(np.sum(sent, axis=0) + codec.residual, np.sum(deltas, axis=0))
    plain = enc.encode(ClientUpdate(5, deltas[0], 10), TrainTask(5, np.zeros(50), 1, 0.1, 32,
                                                                  0.0, 0.0))  # fmt: skip
    assert isinstance(plain, ClientUpdate) and enc._codec is None


def test_a_malformed_compressed_update_is_dropped_not_applied() -> None:
    enc = UpdateEncoder(seed=0)
    task = TrainTask(1, np.zeros(8), 1, 0.1, 32, 0.0, 0.0, compression="q8")
    out = enc.encode(ClientUpdate(1, np.ones(8), 5), task)
    assert isinstance(out, CompressedUpdate)
    with pytest.raises(VflError, match="expected 9"):
        decode_update(out, width=9)
    with pytest.raises(VflError, match="not a payload"):
        decode_update(CompressedUpdate(1, np.ones(3), 5), width=3)  # type: ignore[arg-type]
    sparse_task = TrainTask(1, np.zeros(8), 1, 0.1, 32, 0.0, 0.0, compression="topk+q8")
    sparse = UpdateEncoder(seed=0).encode(ClientUpdate(1, np.arange(8.0), 5), sparse_task)
    assert isinstance(sparse, CompressedUpdate) and isinstance(sparse.payload, SparseArray)
    with pytest.raises(VflError, match="expected 9"):
        decode_update(sparse, width=9)
    tampered = bytearray(sparse.payload.data)
    tampered[3] ^= 1
    with pytest.raises(VflError, match="checksum"):  # CompressionError is a VflError
        SparseArray(bytes(tampered))


def test_compression_settings_in_the_job_file() -> None:
    spec = parse_fedavg_model({"compression": "topk+q8", "compression_ratio": 0.05})
    assert spec.config.compression == "topk+q8" and spec.config.compression_ratio == 0.05
    cases: list[tuple[dict[str, Any], str]] = [
        ({"compression": "zip"}, "compression: unknown 'zip'"),
        ({"compression": 8}, "model.compression has the wrong type"),
        ({"compression_ratio": 0}, "compression_ratio must be in"),
        ({"compression_ratio": 1.5}, "compression_ratio must be in"),
        ({"compression": "topk", "secure_aggregation": True}, "does not compose"),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match):
            parse_fedavg_model(bad)


def _csv(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.array([1.0, -1.0, 0.5, 0.0]))))).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df.insert(0, "y", y)
    df.insert(0, "id", np.arange(n) + 10_000 * seed)
    df.to_csv(path, index=False)


def test_a_compressed_job_reports_bytes_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, name in enumerate(["b1", "b2", "hub"]):
        _csv(tmp_path / f"{name}.csv", 300, i)
    raw: dict[str, Any] = {
        "job": {"id": "fl-cmp", "type": "fedavg", "aggregator": "hub"},
        "parties": {
            n: {"data": f"{n}.csv", "id_column": "id", "label_column": "y"}
            for n in ("hub", "b1", "b2")
        },  # fmt: skip
        "crypto": {"scheme": "plain"},
        "model": {"rounds": 3, "compression": "q8"},
    }
    job = parse_job(raw, base_dir=tmp_path)
    net = InMemoryNetwork(["hub", "b1", "b2"], job_id="fl-cmp", seed=0)

    def party(name: str) -> Any:
        def fn(ch: Channel) -> dict[str, Any]:
            return run_fedavg_job(job, party=name, channel=ch, work_dir=tmp_path / name)

        return fn

    out = run_parties({n: party(n) for n in ("hub", "b1", "b2")}, network=net, timeout=120)
    hub = out["hub"]
    json.dumps(hub)
    assert hub["compression"] == "q8" and len(hub["bytes_per_round"]) == 3
    received = [m.payload for m in net.transcript.received_by("hub") if m.topic == "fl/update"]
    assert sum(r["bytes_up"] for r in hub["bytes_per_round"]) == sum(
        payload_nbytes(u) for u in received
    )
    assert hub["bytes_received"] == sum(r["bytes_up"] for r in hub["bytes_per_round"])


def test_async_mode_decodes_compressed_updates_and_counts_their_bytes() -> None:
    cfg = FedConfig(rounds=4, local=LOCAL, mode=Mode.ASYNC, buffer_size=2, concurrency=3,
                    compression="topk", compression_ratio=0.1)  # fmt: skip
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id="cmp-async", seed=0)
    res = simulate(_clients(), cfg, np.zeros(D + 1), network=net)
    assert len(res.history) == 4 and all(len(h.accepted) >= 2 for h in res.history)
    assert _auc(res.params) > 0.7
    received = [m.payload for m in net.transcript.received_by(AGGREGATOR_NAME)
                if m.topic == "fl/update"]  # fmt: skip
    assert all(isinstance(u, CompressedUpdate) for u in received)
    counted = sum(h.bytes_up for h in res.history)
    assert 0 < counted <= sum(payload_nbytes(u) for u in received)
