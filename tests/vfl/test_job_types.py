"""`run_job` drives every job type end to end over the in-memory network: split_nn and fedavg."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.jobs import Job, parse_job, run_job


def _party(job: Job, name: str, work: Path, ch: Channel) -> dict[str, Any]:
    torch.set_num_threads(1)
    return run_job(job, party=name, channel=ch, work_dir=work / name)


def _run(job: Job, names: list[str], work: Path) -> dict[str, Any]:
    net = InMemoryNetwork(names, job_id=job.job.id, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plain mode warns loudly, by design
        return run_parties(
            {n: functools.partial(_party, job, n, work) for n in names}, network=net, timeout=300
        )


def test_split_nn_job_aligns_trains_and_reports_leakage(tmp_path: Path) -> None:
    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    g.iloc[:540].to_csv(tmp_path / "bank.csv", index=False)
    h.iloc[20:].sample(frac=1.0, random_state=1).to_csv(tmp_path / "retailer.csv", index=False)
    raw = {
        "job": {"id": "snn-job", "type": "split_nn", "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": {"scheme": "ckks"},
        "evaluation": {"test_fraction": 0.25, "seed": 0},
        "model": {"epochs": 3, "batch_size": 64, "learning_rate": 0.05},
    }
    job = parse_job(raw, base_dir=tmp_path)
    out = _run(job, ["bank", "retailer"], tmp_path)
    bank, retailer = out["bank"], out["retailer"]
    assert bank["psi"]["intersection_size"] == retailer["psi"]["intersection_size"] == 520
    assert bank["rows"] == {"train": 390, "test": 130}
    assert bank["crypto"]["scheme"] == "ckks"
    assert bank["metrics"]["test_auc"] > 0.9
    assert 0.0 <= bank["privacy"]["leak_auc_norm"] <= 1.0
    assert "metrics" not in retailer or retailer["metrics"] == {}
    assert Path(bank["model_path"]).exists() and Path(retailer["model_path"]).exists()
    assert bank["bytes_sent"] > 0 and retailer["bytes_sent"] > 0


def test_fedavg_job_skips_psi_and_trains(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="vfl.jobs")
    names = ["hub", "c1", "c2"]
    parties: dict[str, Any] = {
        "hub": {"data": "test.csv", "id_column": "id", "label_column": "y"},
    }
    read_fate("breast_homo_test.csv").to_csv(tmp_path / "test.csv", index=False)
    for name, src in (("c1", "breast_homo_guest.csv"), ("c2", "breast_homo_host.csv")):
        read_fate(src).to_csv(tmp_path / f"{name}.csv", index=False)
        parties[name] = {"data": f"{name}.csv", "id_column": "id", "label_column": "y"}
    raw = {
        "job": {"id": "fl-job", "type": "fedavg", "aggregator": "hub"},
        "parties": parties,
        "crypto": {"scheme": "plain"},
        "model": {"rounds": 5},
    }
    job = parse_job(raw, base_dir=tmp_path)
    out = _run(job, names, tmp_path)
    assert out["hub"]["role"] == "aggregator" and out["hub"]["rounds"] == 5
    assert out["hub"]["metrics"]["test_auc"] > 0.95
    assert "psi" not in out["hub"]
    assert "round 5: 2/2 updates accepted" in caplog.text  # progress per round
    assert out["c1"]["bytes_sent"] > 0


def _psi_job(tmp_path: Path, psi: dict[str, Any]) -> Job:
    raw = {
        "job": {"id": "dup-job", "type": "psi"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "psi": psi,
    }
    return parse_job(raw, base_dir=tmp_path)


def test_duplicate_ids_follow_the_job_files_policy(tmp_path: Path) -> None:
    from vfl.errors import ConfigError

    pd.DataFrame({"id": [1, 2, 2, 3, 4], "a": [0.1, 0.2, 0.3, 0.4, 0.5]}).to_csv(
        tmp_path / "bank.csv", index=False
    )
    pd.DataFrame({"id": [4, 3, 2, 9], "b": [1.0, 2.0, 3.0, 4.0]}).to_csv(
        tmp_path / "retailer.csv", index=False
    )
    with pytest.raises(ConfigError, match="psi.duplicates"):
        _psi_job(tmp_path, {"duplicates": "last"})
    with pytest.raises(ConfigError, match="psi.reveal"):
        _psi_job(tmp_path, {"reveal": "size"})
    with pytest.raises(Exception, match="duplicate"):  # the default policy: a clear error
        _run(_psi_job(tmp_path, {}), ["bank", "retailer"], tmp_path / "strict")
    out = _run(_psi_job(tmp_path, {"duplicates": "first"}), ["bank", "retailer"], tmp_path)
    assert out["bank"]["psi"]["intersection_size"] == 3
    aligned = pd.read_csv(out["bank"]["aligned_csv"])
    assert aligned["id"].tolist() == [2, 3, 4] and aligned["a"].tolist() == [0.2, 0.4, 0.5]
