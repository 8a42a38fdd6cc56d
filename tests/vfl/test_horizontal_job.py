"""Job type ``fedavg``: the ``[model]`` parser and ``run_fedavg_job`` for every party."""

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
from vfl.errors import ConfigError
from vfl.horizontal import FedJobModel, Mode, parse_fedavg_model, run_fedavg_job
from vfl.jobs import parse_job


def _csv(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.array([1.0, -1.0, 0.5, 0.0]))))).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df.insert(0, "y", y)
    df.insert(0, "id", np.arange(n) + 10_000 * seed)
    df.to_csv(path, index=False)


def test_parse_fedavg_model_defaults_and_errors() -> None:
    spec = parse_fedavg_model({})
    assert isinstance(spec, FedJobModel) and spec.model == "logistic"
    assert spec.config.rounds == 20 and spec.config.aggregator == "fedavg"
    full = parse_fedavg_model(
        {"rounds": 3, "aggregator": "krum", "aggregator_options": {"f": 1}, "mu": 0.1,
         "mode": "async", "model": "mlp", "hidden": [8, 4], "norm_ratio": 10}
    )  # fmt: skip
    assert full.config.mode is Mode.ASYNC and full.config.local.mu == 0.1
    assert full.hidden == (8, 4) and full.config.validation.norm_ratio == 10.0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"epochs": 1}, "unknown key model.epochs"),
        ({"rounds": "3"}, "model.rounds has the wrong type"),
        ({"rounds": True}, "model.rounds has the wrong type"),
        ({"aggregator": "avg"}, "aggregator"),
        ({"model": "svm"}, "model.model"),
        ({"hidden": [0]}, "model.hidden"),
        ({"mode": "later"}, "model.mode"),
        ({"rounds": 0}, "rounds"),
        ({"learning_rate": -1}, "learning_rate"),
        ({"secure_aggregation": 1}, "model.secure_aggregation has the wrong type"),
        ({"secure_aggregation": True, "aggregator": "krum"}, "secure_aggregation"),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match):
            parse_fedavg_model(bad)


def test_run_fedavg_job_every_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i, name in enumerate(["b1", "b2", "b3"]):
        _csv(tmp_path / f"{name}.csv", 300, i)
        _csv(tmp_path / f"{name}_test.csv", 200, 10 + i)
    _csv(tmp_path / "holdout.csv", 800, 99)
    raw: dict[str, Any] = {
        "job": {"id": "fl-job", "type": "fedavg", "aggregator": "hub"},
        "parties": {
            "hub": {"data": "holdout.csv", "id_column": "id", "label_column": "y"},
            **{
                n: {
                    "data": f"{n}.csv",
                    "test_data": f"{n}_test.csv",
                    "id_column": "id",
                    "label_column": "y",
                }
                for n in ("b1", "b2", "b3")
            },
        },  # fmt: skip
        "crypto": {"scheme": "plain"},
        "model": {"rounds": 4, "secure_aggregation": True, "personalise_epochs": 1},
    }
    job = parse_job(raw, base_dir=tmp_path)
    net = InMemoryNetwork(["hub", "b1", "b2", "b3"], job_id="fl-job", seed=0)
    seen: list[int] = []

    def party(name: str) -> Any:
        def fn(ch: Channel) -> dict[str, Any]:
            return run_fedavg_job(
                job, party=name, channel=ch, work_dir=tmp_path / name,
                on_round=(lambda r: seen.append(r.round)) if name == "hub" else None,
            )  # fmt: skip

        return fn

    out = run_parties({n: party(n) for n in ("hub", "b1", "b2", "b3")}, network=net, timeout=120)
    hub = out["hub"]
    assert hub["role"] == "aggregator" and hub["rounds"] == 4 and seen == [1, 2, 3, 4]
    assert hub["metrics"]["test_auc"] > 0.7 and not hub["resumed"]
    assert set(hub["client_reports"]) == {"b1", "b2", "b3"}
    json.dumps(hub)  # JSON-ready
    assert (tmp_path / "hub" / "heterogeneity.json").is_file()
    assert (tmp_path / "hub" / "checkpoint" / "aggregator.json").is_file()
    history = json.loads((tmp_path / "hub" / "history.json").read_text())
    assert [h["round"] for h in history] == [1, 2, 3, 4]
    for n in ("b1", "b2", "b3"):
        assert out[n]["role"] == "client" and out[n]["rounds_trained"] == [1, 2, 3, 4]
        assert {"auc_global", "auc_personalised", "test_auc"} <= set(out[n]["metrics"])
    # Restarted after the last round: resumes from the checkpoint, trains nothing more.
    net2 = InMemoryNetwork(["hub", "b1", "b2", "b3"], job_id="fl-job", seed=1)
    again = run_parties({n: party(n) for n in ("hub", "b1", "b2", "b3")}, network=net2,
                        timeout=120)  # fmt: skip
    assert again["hub"]["resumed"] and again["hub"]["rounds"] == 4
    assert again["b1"]["rounds_trained"] == []


def test_run_fedavg_job_needs_an_aggregator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _csv(tmp_path / "a.csv", 50, 0)
    raw = {
        "job": {"id": "j", "type": "fedavg"},
        "parties": {n: {"data": "a.csv", "id_column": "id", "label_column": "y"} for n in "ab"},
    }
    job = parse_job(raw, base_dir=tmp_path)
    net = InMemoryNetwork(["a", "b"], job_id="j", seed=0)
    with pytest.raises(ConfigError, match="job.aggregator"):
        run_fedavg_job(job, party="a", channel=net.channel("a"), work_dir=tmp_path / "w")
