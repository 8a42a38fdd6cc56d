"""The ``secureboost`` job type end to end (PSI, train, evaluate, register), in memory and gRPC."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.bench.secureboost import DATA, GUEST, HOST, _grpc_run
from vfl.errors import ConfigError
from vfl.jobs import Job, parse_job, run_job


def _party(job: Job, name: str, work: Path, ch: Channel) -> dict[str, Any]:
    return run_job(job, party=name, channel=ch, work_dir=work / name)


def _files(tmp_path: Path, rows: int = 700) -> None:
    g = pd.read_csv(Path(DATA) / GUEST).iloc[:rows]
    h = pd.read_csv(Path(DATA) / HOST).iloc[:rows]
    g.iloc[: rows - 20].to_csv(tmp_path / "bank.csv", index=False)
    h.iloc[20:].sample(frac=1.0, random_state=1).to_csv(tmp_path / "retailer.csv", index=False)


def _raw(scheme: str, **model: Any) -> dict[str, Any]:
    return {
        "job": {"id": f"sb-job-{scheme}", "type": "secureboost", "label_party": "bank"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": {"scheme": scheme, "key_bits": 512},
        "evaluation": {"test_fraction": 0.25, "seed": 0},
        "model": {"trees": 3, "max_depth": 3, "max_bin": 16, **model},
    }


@pytest.mark.parametrize("scheme", ["plain", "paillier"])
def test_secureboost_job_aligns_trains_and_registers(tmp_path: Path, scheme: str) -> None:
    _files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plain mode and small keys warn, by design
        job = parse_job(_raw(scheme), base_dir=tmp_path, allow_small_keys=True)
        net = InMemoryNetwork(["bank", "retailer"], job_id=job.job.id, seed=0)
        out = run_parties(
            {n: functools.partial(_party, job, n, tmp_path) for n in ("bank", "retailer")},
            network=net,
            timeout=600,
        )
    bank, retailer = out["bank"], out["retailer"]
    assert bank["psi"]["intersection_size"] == retailer["psi"]["intersection_size"] == 660
    assert bank["rows"] == {"train": 495, "test": 165}
    assert bank["crypto"]["scheme"] == scheme
    assert 0.6 < bank["metrics"]["test_auc"] <= 1.0
    assert "test_logloss" in bank["metrics"]
    assert retailer.get("metrics", {}) == {}
    assert len(bank["history"]) == 3
    for party in (bank, retailer):  # each party's own part, as JSON
        doc = json.loads(Path(party["model_path"]).read_text())
        assert doc["format"].startswith("vfl.secureboost.")
    bank_doc = json.loads(Path(bank["model_path"]).read_text())
    retailer_doc = json.loads(Path(retailer["model_path"]).read_text())
    assert "value" in bank_doc["forest"] and "forest" not in retailer_doc  # leaves stay at bank


def test_secureboost_job_bad_model_key_fails_before_any_message(tmp_path: Path) -> None:
    _files(tmp_path)
    with pytest.raises(ConfigError, match="model.depth"):
        parse_job(_raw("paillier", depth=4), base_dir=tmp_path, allow_small_keys=True)
    with pytest.raises(ConfigError, match="crypto.scheme"):
        parse_job(_raw("ckks"), base_dir=tmp_path, allow_small_keys=True)


@pytest.mark.slow
@pytest.mark.grpc
def test_secureboost_two_processes_over_grpc() -> None:
    """Both parties as OS processes over mutual-TLS gRPC, Paillier 2048 (the benchmark's runner)."""
    spec = {
        "data_dir": DATA,
        "rows": 400,
        "trees": 1,
        "max_depth": 3,
        "max_bin": 16,
        "learning_rate": 0.3,
        "key_bits": 2048,
        "processes": 0,
        "scheme": "paillier",
    }
    out = _grpc_run(spec)
    assert out["scheme"] == "paillier" and out["trees"] == 1
    assert 0.6 < out["test_auc"] <= 1.0
    assert out["bytes_sent"]["bank"] > 0 and out["bytes_sent"]["retailer"] > 0
    assert out["timing"]["bank"]["encrypt"] > 0 and out["timing"]["retailer"]["histograms"] > 0
