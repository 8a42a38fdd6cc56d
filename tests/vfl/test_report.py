"""``vfl.report``: the HTML report of a run directory, on synthetic hetero-LR and split-NN runs.

The run directories are written here in the run-files contract's format (status.json,
events.jsonl, result.json) next to a real audit.db and registry.db made with vfl.governance.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from crypto.keys import SigningKey
from crypto.random import SeededRandom
from vfl.errors import VflError
from vfl.governance import (
    AuditLog,
    ModelMetadata,
    ModelRegistry,
    record_job_started,
    record_psi_result,
    record_round_metrics,
)
from vfl.report import ReportError, build_report, render_report, write_report

EVIL = "<script>alert(1)</script>"
T0 = 1_790_000_000.0


def _key(seed: int) -> SigningKey:
    return SigningKey.generate(rng=SeededRandom(seed))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data), encoding="utf-8")


def _events(path: Path, events: list[Any], *, cut_last: bool = True) -> None:
    lines = [json.dumps(e) for e in events]
    text = "\n".join(lines) + "\n"
    if cut_last:  # a writer killed mid-line: the reader must skip it
        text += json.dumps({"t": T0 + 999, "kind": "round", "round": 99})[:25]
    path.write_text(text, encoding="utf-8")


def _governance(work: Path, *, party: str, peer: str, job_id: str, run_dir: Path) -> None:
    """audit.db with this job's records and a peer's head; registry.db with lineage."""
    log = AuditLog(work / "audit.db", party=party, signing_key=_key(1))
    record_job_started(log, job_id=job_id, job_type="hetero_lr", actor=party)
    record_psi_result(
        log, job_id=job_id, own_size=500, intersection_size=412, protocol="ecdh", actor=party
    )
    for r in range(1, 4):
        record_round_metrics(log, job_id=job_id, round=r, metrics={"loss": 1 / r}, actor=party)
    other = AuditLog(work / "peer-audit.db", party=peer, signing_key=_key(2))
    other.append("job.started", {"job_id": job_id}, actor=peer)
    log.store_peer_head(other.head(job_id=job_id))
    other.close()
    artefact = run_dir / "model.json"
    artefact.write_text("{}", encoding="utf-8")
    with ModelRegistry(work / "registry.db", party=party, audit_log=log) as registry:
        meta = ModelMetadata(job_id="older-job", validation_metrics={"test_auc": 0.7})
        registry.register("credit", artefact=artefact, metadata=meta, actor=party)
        registry.promote("credit", "0.1.0", actor=party, to="staging")
        registry.promote("credit", "0.1.0", actor=party)
        meta = ModelMetadata(job_id=job_id, validation_metrics={"test_auc": 0.8})
        registry.register("credit", artefact=artefact, metadata=meta, actor=party, parent="0.1.0")
    log.close()


def write_hetero_run(tmp: Path, *, party: str = "bank", peer: str = "retailer") -> Path:
    """A finished hetero-LR-like run of ``party`` (label party) with ``peer``; returns RUN_DIR."""
    job_id = "credit-2026-11"
    run_dir = tmp / "work" / "runs" / job_id / party
    run_dir.mkdir(parents=True)
    rounds = 8
    events: list[dict[str, Any]] = [
        {"t": T0, "kind": "phase", "phase": "psi", "seconds": None},
        {"t": T0 + 2, "kind": "psi", "intersection_size": 412, "input_rows": 500},
        {"t": T0 + 2, "kind": "phase", "phase": "train", "seconds": 2.0},
    ]
    for r in range(1, rounds + 1):
        events.append(
            {
                "t": T0 + 2 + r,
                "kind": "round",
                "round": r,
                "metrics": {
                    "loss": 0.7 / r**0.5,
                    "val_auc": 0.6 + 0.03 * r,
                    "accuracy": 0.55 + 0.02 * r,
                    "f1": 0.5 + 0.025 * r,
                },
                "seconds": 1.0 + 0.1 * r,
                "bytes_sent": 200_000 + 1000 * r,
                "bytes_received": 150_000,
                "participants": [party, peer],
                "dropped": [],
                "epsilon": None,
                "epsilon_round": None,
                "crypto_seconds": 0.6,
            }
        )
    events += [
        {"t": T0 + 12, "kind": "phase", "phase": "evaluate", "seconds": 9.5},
        {"t": T0 + 13, "kind": "alert", "alert": "plateau", "message": "no improvement"},
        {"t": T0 + 13, "kind": "model", "name": "credit", "version": "0.2.0", "stage": "candidate"},
        {"t": T0 + 13, "kind": "phase", "phase": "done", "seconds": 0.8},
    ]
    _events(run_dir / "events.jsonl", events)
    _write_json(
        run_dir / "status.json",
        {
            "job_id": job_id,
            "party": party,
            "type": "hetero_lr",
            "label_party": party,
            "parties": [party, peer],
            "phase": "done",
            "round": rounds,
            "total_rounds": rounds,
            "started": T0,
            "updated": T0 + 13,
            "metrics": {"test_auc": 0.83},
            "bytes_sent": 2_000_000,
            "bytes_received": 1_500_000,
            "peers": {
                peer: {"last_seen": T0 + 13, "bytes_sent": 2_000_000, "bytes_received": 1_500_000}
            },
            "epsilon": None,
            "delta": None,
            "error": None,
        },
    )
    _write_json(
        run_dir / "result.json",
        {
            "job_id": job_id,
            "party": party,
            "type": "hetero_lr",
            "psi": {"intersection_size": 412},
            "metrics": {"test_auc": 0.83, "test_accuracy": 0.77, "test_logloss": 0.5},
            "timing": {"psi": 2.0, "train": 9.5, "evaluate": 0.8, "total": 12.3, "train_cpu": 8.0},
            "bytes_sent": 2_000_000,
            "crypto": {"scheme": "paillier", "key_bits": 2048},
            "run_dir": str(run_dir),
        },
    )
    _governance(run_dir.parents[2], party=party, peer=peer, job_id=job_id, run_dir=run_dir)
    return run_dir


def write_split_nn_run(tmp: Path, *, feature: str = "retailer") -> Path:
    """A split-NN-like run with DP, leak AUCs and a dropped party, without result.json yet."""
    job_id = "snn-1"
    run_dir = tmp / "work2" / "runs" / job_id / "bank"
    run_dir.mkdir(parents=True)
    parties = ["bank", feature, "insurer"]
    events: list[dict[str, Any]] = [{"t": T0, "kind": "psi", "intersection_size": 900}]
    for r in range(1, 6):
        dropped = ["insurer"] if r == 3 else []
        events.append(
            {
                "t": T0 + r,
                "kind": "round",
                "round": r,
                "metrics": {"train_loss": 0.69 - 0.05 * r, "val_auc": 0.7 + 0.02 * r},
                "seconds": 3.0,
                "bytes_sent": 5_000_000,
                "bytes_received": 4_000_000,
                "participants": [p for p in parties if p not in dropped],
                "dropped": dropped,
                "epsilon": 0.4 * r,
                "epsilon_round": 0.4,
                "crypto_seconds": 1.0,
            }
        )
    events.append(
        {"t": T0 + 6, "kind": "privacy", "leak_auc_norm": 0.52, "leak_auc_direction": 0.55}
    )
    _events(run_dir / "events.jsonl", events, cut_last=False)
    _write_json(
        run_dir / "status.json",
        {
            "job_id": job_id,
            "party": "bank",
            "type": "split_nn",
            "label_party": "bank",
            "parties": parties,
            "phase": "train",
            "round": 5,
            "total_rounds": 10,
            "started": T0,
            "updated": T0 + 6,
            "metrics": {"train_loss": 0.44},
            "bytes_sent": 25_000_000,
            "bytes_received": 20_000_000,
            "peers": {
                feature: {"last_seen": T0 + 6, "bytes_sent": 20_000_000, "bytes_received": 1},
                "insurer": {"last_seen": None, "bytes_sent": 5_000_000, "bytes_received": 2},
            },
            "epsilon": 2.0,
            "delta": 1e-5,
            "error": None,
        },
    )
    return run_dir


class _Checker(HTMLParser):
    """Collects tags and checks nesting: every opened non-void element is closed in order."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Checker:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def test_hetero_lr_report_has_the_plots_and_the_summary(tmp_path: Path) -> None:
    run_dir = write_hetero_run(tmp_path)
    report = render_report(run_dir)
    doc = parse(report.html)
    svgs = [attrs for tag, attrs in doc.tags if tag == "svg"]
    assert len(svgs) >= 5
    assert [a["id"] for a in svgs] == list(report.plots)
    for plot in (
        "metrics-loss",
        "metrics-quality",
        "metrics-f1",
        "bytes-round",
        "bytes-peer",
        "participation",
        "participation-parties",
        "phase-time",
        "lineage",
        "audit-events",
    ):
        assert plot in report.plots
    assert report.work_dir == run_dir.parents[2].resolve()
    text = " ".join(doc.text)
    for fact in ("credit-2026-11", "412 of 500 own rows", "paillier, 2048-bit key"):
        assert fact in text
    assert "test_auc = 0.83" in text
    assert "credit 0.2.0 (candidate)" in text
    assert "No DP in this run." in text
    assert "Leak AUC was not measured" in text
    assert "chain verified" in text and "not pinned" in text
    assert "Skipped unreadable event lines: 1." in text
    # the lineage graph: both versions, 0.1.0 in production, an arrow from it to 0.2.0
    lineage = report.html.split('id="lineage"')[1].split("</svg>")[0]
    assert ">0.1.0<" in lineage and ">0.2.0<" in lineage and ">production<" in lineage
    assert "0.1.0 -&gt; 0.2.0" in lineage
    # the peer's signed head and the per-kind audit counts
    assert "retailer" in report.html.split('id="section-audit"')[1]
    assert "train.round_metrics" in text


def test_offline_and_script_free(tmp_path: Path) -> None:
    html = build_report(write_hetero_run(tmp_path))
    doc = parse(html)
    assert not any(tag in ("script", "iframe", "img", "link", "object") for tag, _a in doc.tags)
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    assert "url(http" not in html
    hrefs = [a.get("href") for tag, a in doc.tags if tag == "a"]
    assert hrefs and all(h is not None and h.startswith("#") for h in hrefs)


def test_split_nn_report_dp_leak_and_participation(tmp_path: Path) -> None:
    run_dir = write_split_nn_run(tmp_path)
    report = render_report(run_dir)
    doc = parse(report.html)
    for plot in ("privacy-epsilon", "privacy-epsilon-round", "leak-auc", "participation"):
        assert plot in report.plots
    assert len(report.plots) >= 5
    assert report.work_dir is None
    text = " ".join(doc.text)
    assert "epsilon 2, delta 1e-05" in text
    assert "chance (0.5)" in text
    assert "still going" in text
    assert "No work directory" in text
    grid = report.html.split('id="participation-parties"')[1].split("</svg>")[0]
    assert "insurer round 3: dropped" in grid
    assert "insurer round 2: took part" in grid


def test_names_from_files_are_escaped(tmp_path: Path) -> None:
    run_dir = write_split_nn_run(tmp_path, feature=EVIL)
    html = build_report(run_dir)
    doc = parse(html)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not any(tag == "script" for tag, _a in doc.tags)
    assert EVIL in " ".join(doc.text)  # shown to the reader as text


def test_escaping_in_the_governance_sections(tmp_path: Path) -> None:
    run_dir = write_hetero_run(tmp_path, party="bank", peer=EVIL)
    html = build_report(run_dir)
    parse(html)
    assert "<script" not in html


def test_result_only_run_falls_back_to_history(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "j" / "bank"
    run_dir.mkdir(parents=True)
    history = [
        {
            "task": 0,
            "epoch": e,
            "learning_rate": 0.1,
            "val_logloss": 0.7 - 0.05 * e,
            "val_auc": 0.6 + 0.04 * e,
            "seconds": 1.0,
            "bytes_sent": 1000 * (e + 1),
        }
        for e in range(4)
    ]
    _write_json(
        run_dir / "result.json",
        {
            "job_id": "j",
            "party": "bank",
            "type": "hetero_lr",
            "history": history,
            "timing": {"psi": 1.0, "train": 4.0},
            "metrics": {"test_auc": 0.75},
        },
    )
    report = render_report(run_dir)
    assert {"metrics-loss", "metrics-quality", "bytes-round", "phase-time"} <= set(report.plots)
    bars = report.html.split('id="bytes-round"')[1].split("</svg>")[0]
    assert bars.count("sent: 1000</title>") == 4  # cumulative turned into per-round amounts
    assert "learning_rate" not in report.html


@pytest.mark.parametrize("content", [None, "not json", "[1, 2]"])
def test_bad_run_dir_is_refused_and_nothing_written(tmp_path: Path, content: str | None) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text("{}\n", encoding="utf-8")
    if content is not None:
        (run_dir / "status.json").write_text(content, encoding="utf-8")
    out = tmp_path / "report.html"
    with pytest.raises(ReportError) as info:
        write_report(run_dir, out)
    assert isinstance(info.value, VflError)
    assert "\n" not in str(info.value)
    assert str(run_dir) in str(info.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [run_dir]


def test_missing_run_dir_and_work_dir(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no run directory"):
        build_report(tmp_path / "nope")
    run_dir = write_split_nn_run(tmp_path)
    with pytest.raises(ReportError, match="no work directory"):
        build_report(run_dir, work_dir=tmp_path / "nowhere")


def test_write_report_is_atomic_and_replaces(tmp_path: Path) -> None:
    run_dir = write_hetero_run(tmp_path)
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")
    report = write_report(run_dir, out)
    assert out.read_text(encoding="utf-8") == report.html
    assert not (tmp_path / "report.html.partial").exists()


def test_tampered_audit_log_is_reported(tmp_path: Path) -> None:
    import sqlite3

    run_dir = write_hetero_run(tmp_path)
    db = sqlite3.connect(run_dir.parents[2] / "audit.db")
    db.execute("DROP TRIGGER records_no_update")
    db.execute("UPDATE records SET actor = 'mallory' WHERE seq = 2")
    db.commit()
    db.close()
    html = build_report(run_dir)
    assert "TAMPERED" in html and "record 2" in html


def test_pinned_wrong_key_is_not_verified(tmp_path: Path) -> None:
    run_dir = write_hetero_run(tmp_path)
    html = build_report(run_dir, audit_key=_key(7).verify_key)
    assert "chain verified" not in html
    assert "TAMPERED" in html


def test_explicit_work_dir(tmp_path: Path) -> None:
    hetero = write_hetero_run(tmp_path)
    split = write_split_nn_run(tmp_path)
    report = render_report(split, work_dir=hetero.parents[2])
    assert "lineage" in report.plots and "audit-events" in report.plots


def test_failed_run_shows_the_error(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "j" / "bank"
    run_dir.mkdir(parents=True)
    _write_json(
        run_dir / "status.json",
        {
            "job_id": "j",
            "party": "bank",
            "type": "hetero_lr",
            "phase": "failed",
            "error": "PeerDown: retailer <gone>",
        },
    )
    doc = parse(build_report(run_dir))
    text = " ".join(doc.text)
    assert "PeerDown: retailer <gone>" in text
    assert "still going" not in text


def test_wrong_types_in_files_do_not_break_the_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "j" / "bank"
    run_dir.mkdir(parents=True)
    _write_json(
        run_dir / "status.json",
        {
            "job_id": ["x"],
            "parties": "bank",
            "peers": [1],
            "metrics": {"auc": "high"},
            "epsilon": "lots",
            "started": "yesterday",
        },
    )
    _events(
        run_dir / "events.jsonl",
        [
            {"kind": "round", "round": "1", "metrics": {"loss": 1}},
            {"kind": "round", "round": True},
            {"kind": "round", "round": 2, "metrics": [1, 2], "participants": "bank"},
            {"kind": "round", "round": 3, "metrics": {"loss": 0.5, "f1": None}, "epsilon": "e"},
            {"kind": "phase", "phase": 7, "seconds": "slow"},
            ["not", "an", "object"],
            {"no": "kind"},
        ],
    )
    report = render_report(run_dir)
    parse(report.html)
    assert "metrics-loss" in report.plots
    assert "No DP in this run." in report.html
    assert "Skipped unreadable event lines: 3." in report.html
