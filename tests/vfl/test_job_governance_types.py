"""Every job type leaves the same kind of record: psi, split_nn and fedavg (hetero LR: elsewhere)."""

from __future__ import annotations

import functools
import inspect
import json
import sqlite3
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
from vfl.governance import ModelRegistry, verify
from vfl.governance._verify import read_stored_heads
from vfl.jobs import Job, PartyIdentity, parse_job, run_job


def _run(job: Job, names: list[str], work: Path) -> tuple[dict[str, Any], InMemoryNetwork]:
    net = InMemoryNetwork(names, job_id=job.job.id, seed=0)

    def party(name: str, ch: Channel) -> dict[str, Any]:
        torch.set_num_threads(1)
        identity = PartyIdentity(net.signing_key(name), net.verify_keys)
        return run_job(job, party=name, channel=ch, work_dir=work / name, identity=identity)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plain mode warns loudly, by design
        out = run_parties({n: functools.partial(party, n) for n in names}, network=net, timeout=300)
    return out, net


def _events(out: dict[str, Any]) -> list[dict[str, Any]]:
    text = (Path(out["run_dir"]) / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def _audit_events(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [str(e) for (e,) in db.execute("SELECT event FROM records ORDER BY seq")]
    finally:
        db.close()


def _check_common(out: dict[str, Any], names: list[str], work: Path, net: InMemoryNetwork) -> None:
    for name in names:
        status = json.loads((Path(out[name]["run_dir"]) / "status.json").read_text())
        assert status["phase"] == "done" and status["error"] is None
        assert (Path(out[name]["run_dir"]) / "result.json").is_file()
        heads = [h for p in names if p != name for h in read_stored_heads(work / p / "audit.db")]
        result = verify(
            work / name / "audit.db", verify_key=net.verify_keys[name], peer_heads=heads
        )
        assert result.ok and result.heads_checked == len(names) - 1, result.reason
        kinds = _audit_events(work / name / "audit.db")
        for kind in ("job.started", "job.participants", "data.fingerprint", "job.finished"):
            assert kind in kinds, (name, kind)
        assert kinds.count("audit.peer_head") == len(names) - 1


def test_psi_job_is_audited_but_registers_nothing(tmp_path: Path) -> None:
    pd.DataFrame({"id": [1, 2, 3, 4], "a": [0.1, 0.2, 0.3, 0.4]}).to_csv(
        tmp_path / "bank.csv", index=False
    )
    pd.DataFrame({"id": [4, 3, 9], "b": [1.0, 2.0, 3.0]}).to_csv(
        tmp_path / "retailer.csv", index=False
    )
    raw = {
        "job": {"id": "align", "type": "psi"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
    }
    names = ["bank", "retailer"]
    out, net = _run(parse_job(raw, base_dir=tmp_path), names, tmp_path)
    _check_common(out, names, tmp_path, net)
    for name in names:
        assert "model" not in out[name]
        assert "psi.result" in _audit_events(tmp_path / name / "audit.db")
        assert [e["phase"] for e in _events(out[name]) if e["kind"] == "phase"] == ["psi", "done"]
        assert not (tmp_path / name / "registry.db").exists()


@pytest.mark.filterwarnings("ignore:split NN with crypto.scheme = 'plain'")
def test_split_nn_job_records_rounds_and_registers_both_parts(tmp_path: Path) -> None:
    from vfl.split_nn import run_split_nn_job

    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    g.to_csv(tmp_path / "bank.csv", index=False)
    h.to_csv(tmp_path / "retailer.csv", index=False)
    raw = {
        "job": {"id": "snn", "type": "split_nn", "label_party": "bank", "model_name": "snn-credit"},
        "parties": {
            "bank": {"data": "bank.csv", "id_column": "id", "label_column": "y"},
            "retailer": {"data": "retailer.csv", "id_column": "id"},
        },
        "crypto": {"scheme": "plain"},
        "model": {"epochs": 2, "batch_size": 64, "learning_rate": 0.05},
    }
    names = ["bank", "retailer"]
    out, net = _run(parse_job(raw, base_dir=tmp_path), names, tmp_path)
    _check_common(out, names, tmp_path, net)
    hooked = "on_epoch" in inspect.signature(run_split_nn_job).parameters
    for name in names:
        assert out[name]["model"] == {
            "name": "snn-credit",
            "version": "0.1.0",
            "stage": "candidate",
        }
        with ModelRegistry(tmp_path / name / "registry.db", party=name) as registry:
            meta = registry.get("snn-credit", "0.1.0").metadata
        assert meta.validation_metrics["test_auc"] == pytest.approx(
            out["bank"]["metrics"]["test_auc"]
        )
        rounds = [e for e in _events(out[name]) if e["kind"] == "round"]
        assert len(rounds) == (2 if hooked else 0)  # per-epoch lines once split NN has the hook
    leak = [e for e in _events(out["bank"]) if e["kind"] == "privacy"]
    assert len(leak) == 1 and 0.0 <= leak[0]["leak_auc_norm"] <= 1.0


def test_fedavg_job_with_central_dp_records_each_round_at_the_aggregator(tmp_path: Path) -> None:
    names = ["hub", "c1", "c2"]
    parties: dict[str, Any] = {"hub": {"data": "test.csv", "id_column": "id", "label_column": "y"}}
    read_fate("breast_homo_test.csv").to_csv(tmp_path / "test.csv", index=False)
    for name, src in (("c1", "breast_homo_guest.csv"), ("c2", "breast_homo_host.csv")):
        read_fate(src).to_csv(tmp_path / f"{name}.csv", index=False)
        parties[name] = {"data": f"{name}.csv", "id_column": "id", "label_column": "y"}
    raw = {
        "job": {"id": "fl", "type": "fedavg", "aggregator": "hub"},
        "parties": parties,
        "crypto": {"scheme": "plain"},
        "model": {"rounds": 3, "dp": "central", "dp_epsilon": 3.0},
    }
    out, net = _run(parse_job(raw, base_dir=tmp_path), names, tmp_path)
    _check_common(out, names, tmp_path, net)
    rounds = [e for e in _events(out["hub"]) if e["kind"] == "round"]
    assert [e["round"] for e in rounds] == [1, 2, 3]
    assert all(e["participants"] == sorted(names) and e["dropped"] == [] for e in rounds)
    assert all(e["bytes_sent"] > 0 and e["bytes_received"] > 0 for e in rounds)
    assert "test_auc" in rounds[-1]["metrics"]
    # Central DP: the cumulative epsilon grows every round and ends at the accountant's figure.
    spent = [e["epsilon"] for e in rounds]
    assert spent == sorted(spent) and spent[0] > 0
    assert spent[-1] == pytest.approx(out["hub"]["privacy"]["epsilon"])
    status = json.loads((Path(out["hub"]["run_dir"]) / "status.json").read_text())
    assert status["epsilon"] == pytest.approx(spent[-1]) and status["delta"] == 1e-5
    kinds = _audit_events(tmp_path / "hub" / "audit.db")
    assert kinds.count("privacy.epsilon_spent") == 3 + 1  # every round, and the job's total
    assert "privacy.dp_parameters" in kinds
    assert out["hub"]["model"]["name"] == "fedavg-c1-c2-hub"
    with ModelRegistry(tmp_path / "hub" / "registry.db", party="hub") as registry:
        meta = registry.get("fedavg-c1-c2-hub", "0.1.0").metadata
    assert meta.dp is not None and meta.dp["mode"] == "central"
    assert meta.validation_metrics["test_auc"] == out["hub"]["metrics"]["test_auc"]
    for client in ("c1", "c2"):  # a client holds no model file of its own: nothing to register
        assert "model" not in out[client]
        status = json.loads((Path(out[client]["run_dir"]) / "status.json").read_text())
        assert status["phase"] == "done"
