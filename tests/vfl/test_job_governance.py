"""`run_job` records every job: signed audit trail, chain heads, registry, live run files."""

from __future__ import annotations

import functools
import json
import shutil
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from protocols.channel import Channel
from protocols.errors import PeerDown
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.vfl.test_jobs import PLAIN_JOB, _write_parties
from vfl.errors import ConfigError
from vfl.governance import ModelRegistry, verify
from vfl.governance._verify import read_stored_heads
from vfl.jobs import PartyIdentity, load_job, run_job

PARTIES = ["bank", "retailer"]


def _records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT event, details FROM records ORDER BY seq").fetchall()
    finally:
        db.close()
    return [(str(event), json.loads(details)) for event, details in rows]


def _events(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _run(
    tmp_path: Path, text: str, *, identities: bool = True, job_id: str = "breast-plain"
) -> tuple[dict[str, Any], InMemoryNetwork]:
    (tmp_path / "job.toml").write_text(text.replace('id = "breast-plain"', f'id = "{job_id}"'))
    job = load_job(tmp_path / "job.toml")
    net = InMemoryNetwork(PARTIES, job_id=job.job.id, seed=0)

    def party(name: str, ch: Channel) -> dict[str, Any]:
        ident = PartyIdentity(net.signing_key(name), net.verify_keys) if identities else None
        return run_job(job, party=name, channel=ch, work_dir=tmp_path / name, identity=ident)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # plain mode warns loudly, by design
        out = run_parties(
            {n: functools.partial(party, n) for n in PARTIES}, network=net, timeout=120
        )
    return out, net


@pytest.fixture(scope="module")
def hetero(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Any]:
    tmp = tmp_path_factory.mktemp("governance")
    _write_parties(tmp)
    out, net = _run(tmp, PLAIN_JOB)
    return tmp, out, net


def test_both_audit_logs_verify_and_hold_every_event_kind(
    hetero: tuple[Path, dict[str, Any], Any],
) -> None:
    tmp, out, net = hetero
    for name in PARTIES:
        peer = next(p for p in PARTIES if p != name)
        log = tmp / name / "audit.db"
        result = verify(
            log,
            verify_key=net.verify_keys[name],
            peer_heads=read_stored_heads(tmp / peer / "audit.db"),
        )
        assert result.ok, result.reason
        assert result.heads_checked == 1
        assert oct(log.stat().st_mode & 0o777) == "0o600"
        records = _records(log)
        kinds = [event for event, _ in records]
        for kind in (
            "job.started",
            "job.participants",
            "job.hyperparameters",
            "data.fingerprint",
            "psi.result",
            "crypto.scheme",
            "train.round_metrics",
            "model.registered",
            "job.finished",
            "audit.peer_head",
        ):
            assert kind in kinds, (name, kind)
        details = dict(records)
        assert len(details["job.started"]["digest"]) == 64
        assert details["job.started"]["code_version"].startswith("0.")
        identities = details["job.participants"]["identities"]
        assert identities[peer]["signing_key_sha256"] == net.verify_keys[peer].fingerprint
        assert details["job.participants"]["participants"] == {
            "bank": "label",
            "retailer": "feature",
        }
        assert details["job.hyperparameters"]["hyperparameters"]["model"]["epochs"] == 10
        datasets = {d["dataset"]: d for e, d in records if e == "data.fingerprint"}
        assert set(datasets) == {"data", "aligned_ids"}
        assert datasets["aligned_ids"]["rows"] == 520
        psi_result = details["psi.result"]
        assert psi_result["intersection_size"] == 520
        assert {d["purpose"] for e, d in records if e == "crypto.scheme"} == {"psi", "train"}
        assert details["job.finished"]["status"] == "ok"
        assert kinds[-1] == "audit.peer_head" and kinds[-2] == "job.finished"
        rounds = [d for e, d in records if e == "train.round_metrics"]
        assert [d["round"] for d in rounds] == list(range(1, len(rounds) + 1))
    # Both parties fingerprint the same aligned ids (same rows, same order).
    fingerprints = {
        name: next(
            d["sha256"]
            for e, d in _records(tmp / name / "audit.db")
            if d.get("dataset") == "aligned_ids"
        )
        for name in PARTIES
    }
    assert fingerprints["bank"] == fingerprints["retailer"]
    assert out["bank"]["audit"]["peer_heads"]["retailer"] == out["retailer"]["audit"]["head"]


def test_truncating_a_log_is_detected_against_the_peers_head(
    hetero: tuple[Path, dict[str, Any], Any], tmp_path: Path
) -> None:
    tmp, out, net = hetero
    cut = tmp_path / "bank-audit.db"
    shutil.copy(tmp / "bank" / "audit.db", cut)
    head_seq = out["bank"]["audit"]["head"]["seq"]
    db = sqlite3.connect(cut)
    db.execute("DROP TRIGGER records_no_delete")
    db.execute("DELETE FROM records WHERE seq >= ?", (head_seq - 2,))
    db.commit()
    db.close()
    alone = verify(cut, verify_key=net.verify_keys["bank"])
    assert alone.ok  # a chain prefix is valid on its own ...
    against = verify(
        cut,
        verify_key=net.verify_keys["bank"],
        peer_heads=read_stored_heads(tmp / "retailer" / "audit.db"),
    )
    assert not against.ok and "truncated" in (against.reason or "")  # ... not against the peer


def test_each_party_registers_its_part_as_a_candidate(
    hetero: tuple[Path, dict[str, Any], Any],
) -> None:
    tmp, out, _ = hetero
    for name in PARTIES:
        model = out[name]["model"]
        assert model == {
            "name": "hetero_lr-bank-retailer",
            "version": "0.1.0",
            "stage": "candidate",
        }
        with ModelRegistry(tmp / name / "registry.db", party=name) as registry:
            version = registry.get(model["name"], model["version"])
        meta = version.metadata
        assert version.parent is None
        assert Path(version.artefact_path) == Path(out[name]["model_path"])
        assert meta.job_id == "breast-plain" and meta.code_version
        assert meta.participants == {"bank": "label", "retailer": "feature"}
        assert meta.hyperparameters["model"]["batch_size"] == 128
        assert len(meta.data_version) == 64
        assert meta.training_seconds > 0
        # The label party's held-out metrics gate promotion at every party.
        assert meta.validation_metrics["test_auc"] == pytest.approx(
            out["bank"]["metrics"]["test_auc"]
        )
        assert meta.metrics["label"]["test_auc"] == meta.validation_metrics["test_auc"]
        assert meta.dp is None


def test_run_files_follow_the_contract(hetero: tuple[Path, dict[str, Any], Any]) -> None:
    tmp, out, _ = hetero
    for name in PARTIES:
        run_dir = Path(out[name]["run_dir"])
        assert run_dir == tmp / name / "runs" / "breast-plain" / name
        assert oct(run_dir.stat().st_mode & 0o777) == "0o700"
        status = json.loads((run_dir / "status.json").read_text())
        events = _events(run_dir)
        rounds = [e for e in events if e["kind"] == "round"]
        assert status["phase"] == "done" and status["error"] is None
        assert status["round"] == len(rounds) >= 1
        assert status["parties"] == PARTIES and status["label_party"] == "bank"
        assert status["total_rounds"] == 10
        assert status["bytes_sent"] == out[name]["bytes_sent"] > 0
        peer = next(p for p in PARTIES if p != name)
        assert status["peers"][peer]["bytes_received"] > 0
        assert status["peers"][peer]["last_seen"] >= status["started"]
        assert [e["phase"] for e in events if e["kind"] == "phase"] == [
            "psi",
            "train",
            "evaluate",
            "done",
        ]
        assert [e["round"] for e in rounds] == list(range(1, len(rounds) + 1))
        for event in rounds:
            assert event["participants"] == PARTIES and event["dropped"] == []
            assert event["bytes_sent"] > 0 and event["bytes_received"] > 0
        psi_event = next(e for e in events if e["kind"] == "psi")
        assert psi_event["intersection_size"] == 520 and psi_event["input_rows"] > 520
        model = next(e for e in events if e["kind"] == "model")
        assert {k: model[k] for k in ("name", "version", "stage")} == out[name]["model"]
        saved = json.loads((run_dir / "result.json").read_text())
        assert saved == json.loads(json.dumps(out[name]))
    # The label party has one round line per epoch of its history, with its metrics.
    bank_rounds = [e for e in _events(Path(out["bank"]["run_dir"])) if e["kind"] == "round"]
    assert len(bank_rounds) == len(out["bank"]["history"])
    assert {"loss", "val_auc"} <= set(bank_rounds[0]["metrics"])
    status = json.loads((Path(out["bank"]["run_dir"]) / "status.json").read_text())
    assert status["metrics"]["test_auc"] == pytest.approx(out["bank"]["metrics"]["test_auc"])


def test_a_second_run_is_the_next_version_with_lineage(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    first, _ = _run(tmp_path, PLAIN_JOB, identities=False, job_id="run-1")
    second, _ = _run(tmp_path, PLAIN_JOB, identities=False, job_id="run-2")
    for name in PARTIES:
        assert (tmp_path / name / "audit.key").is_file()  # no identity: the work dir's own key
        assert first[name]["model"]["version"] == "0.1.0"
        assert second[name]["model"]["version"] == "0.2.0"
        with ModelRegistry(tmp_path / name / "registry.db", party=name) as registry:
            assert registry.get("hetero_lr-bank-retailer", "0.2.0").parent == "0.1.0"
        jobs = [
            d["job_id"] for e, d in _records(tmp_path / name / "audit.db") if e == "job.started"
        ]
        assert jobs == ["run-1", "run-2"]


def test_a_failed_job_leaves_status_failed_and_an_audit_record(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    retailer = pd.read_csv(tmp_path / "retailer_train.csv")
    retailer["x0"] = "bad"
    retailer.to_csv(tmp_path / "retailer_train.csv", index=False)
    with pytest.raises(ConfigError, match="feature column 'x0' is not numeric"):
        _run(tmp_path, PLAIN_JOB)
    for name in PARTIES:
        run_dir = tmp_path / name / "runs" / "breast-plain" / name
        status = json.loads((run_dir / "status.json").read_text())
        assert status["phase"] == "failed"
        assert not (run_dir / "result.json").exists()
        finished = [d for e, d in _records(tmp_path / name / "audit.db") if e == "job.finished"]
        assert [d["status"] for d in finished] == ["failed"]
        assert finished[0]["error"] == status["error"]
        last = _events(run_dir)[-1]
        assert (last["kind"], last["phase"]) == ("phase", "failed")
    assert (
        "ConfigError"
        in json.loads(
            (
                tmp_path / "retailer" / "runs" / "breast-plain" / "retailer" / "status.json"
            ).read_text()
        )["error"]
    )
    bank_error = json.loads(
        (tmp_path / "bank" / "runs" / "breast-plain" / "bank" / "status.json").read_text()
    )["error"]
    assert PeerDown.__name__ in bank_error


def test_alerts_become_events_and_audit_records(tmp_path: Path) -> None:
    _write_parties(tmp_path)
    text = PLAIN_JOB + "\n[monitor]\nplateau_rounds = 1\nround_time_limit = 1e-9\n"
    out, _ = _run(tmp_path, text)
    run_dir = Path(out["bank"]["run_dir"])
    events = _events(run_dir)
    alerts = [e for e in events if e["kind"] == "alert"]
    assert any(a["alert"] == "slow_round" for a in alerts)  # every round exceeds 1 ns
    losses = [e["metrics"]["loss"] for e in events if e["kind"] == "round"]
    worse = any(b >= min(losses[: i + 1]) for i, b in enumerate(losses[1:]))
    assert any(a["alert"] == "plateau" for a in alerts) == worse
    audited = [d for e, d in _records(tmp_path / "bank" / "audit.db") if e == "monitor.alert"]
    assert sorted(a["kind"] for a in audited) == sorted(a["alert"] for a in alerts)
