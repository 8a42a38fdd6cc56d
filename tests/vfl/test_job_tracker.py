"""The pieces under `run_job`'s records: per-peer metering, run files, the tracker's alerts."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crypto.keys import SigningKey
from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from vfl.errors import ConfigError
from vfl.jobs import JobTracker, MeteredChannel, PartyIdentity, RunFiles, parse_job


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def test_metered_channel_counts_per_peer_both_ways() -> None:
    net = InMemoryNetwork(["a", "b", "c"], job_id="m", seed=0)
    clock = Clock()
    a = MeteredChannel(net.channel("a"), now=clock)
    a.send("b", "t", np.zeros(10))
    a.broadcast("t", b"xyz")
    net.channel("b").send("a", "u", np.zeros(4, dtype=np.int32))
    assert a.recv("b", "u").shape == (4,)
    traffic = a.traffic()
    assert traffic["b"].bytes_sent == 80 + 3 and traffic["c"].bytes_sent == 3
    assert traffic["b"].bytes_received == 16 and traffic["b"].messages_received == 1
    assert traffic["b"].last_seen == 1001.0 and traffic["c"].last_seen is None
    assert a.bytes_sent == 86 and a.bytes_received == 16 and a.messages_sent == 3
    assert traffic["b"].to_dict() == {"last_seen": 1001.0, "bytes_sent": 83, "bytes_received": 16}


def test_run_files_are_atomic_private_and_line_flushed(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "j" / "a"
    files = RunFiles(
        run_dir,
        job_id="j",
        party="a",
        job_type="psi",
        label_party=None,
        parties=["a", "b"],
        total_rounds=None,
        now=Clock(),
    )
    status = json.loads((run_dir / "status.json").read_text())
    assert status["phase"] == "starting" and status["peers"] == {
        "b": {"last_seen": None, "bytes_sent": 0, "bytes_received": 0}
    }
    files.update(phase="psi", metrics={"loss": 1.0})
    files.update(metrics={"auc": float("nan")})  # non-finite -> null, the file stays strict JSON
    status = json.loads((run_dir / "status.json").read_text())
    assert status["phase"] == "psi" and status["metrics"] == {"loss": 1.0, "auc": None}
    assert status["updated"] > status["started"]
    files.event("phase", phase="psi", seconds=None)
    # Flushed per line: readable while the writer still holds the file open.
    assert json.loads((run_dir / "events.jsonl").read_text())["kind"] == "phase"
    with pytest.raises(KeyError, match="no field"):
        files.update(nonsense=1)
    files.result({"ok": np.float64(0.5)})
    assert json.loads((run_dir / "result.json").read_text()) == {"ok": 0.5}
    assert not list(run_dir.glob(".*.partial"))
    files.close()
    for name in ("status.json", "events.jsonl", "result.json"):
        assert oct(os.stat(run_dir / name).st_mode & 0o777) == "0o600"
    for folder in (run_dir, run_dir.parent, run_dir.parent.parent):
        assert oct(folder.stat().st_mode & 0o777) == "0o700"


def _psi_job(**monitor: Any) -> Any:
    raw: dict[str, Any] = {
        "job": {"id": "watch", "type": "psi"},
        "parties": {n: {"data": f"{n}.csv", "id_column": "id"} for n in ("a", "b", "c")},
    }
    if monitor:
        raw["monitor"] = monitor
    return parse_job(raw)


def test_tracker_raises_silent_party_and_dropout_alerts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = InMemoryNetwork(["a", "b", "c"], job_id="watch", seed=0)
    channel = MeteredChannel(net.channel("a"))
    key = SigningKey.generate(rng=SeededRandom(5))
    tracker = JobTracker(
        _psi_job(),
        party="a",
        channel=channel,
        work_dir=tmp_path,
        identity=PartyIdentity(key).for_party("a"),
    )
    tracker.start()
    with caplog.at_level(logging.WARNING, logger="vfl.governance.monitor"):
        for round_ in range(1, 5):
            speakers = ["b", "c"] if round_ == 1 else ["b"]
            for peer in speakers:
                net.channel(peer).send("a", "step", round_)
                channel.recv(peer, "step")
            tracker.round(metrics={"loss": 1.0 / round_}, seconds=0.1)
    tracker.close()
    events = [
        json.loads(line)
        for line in (tmp_path / "runs" / "watch" / "a" / "events.jsonl").read_text().splitlines()
    ]
    rounds = [e for e in events if e["kind"] == "round"]
    assert [e["dropped"] for e in rounds] == [[], ["c"], ["c"], ["c"]]
    assert rounds[1]["participants"] == ["a", "b"]
    alerts = [(e["alert"], e["message"]) for e in events if e["kind"] == "alert"]
    assert [kind for kind, _ in alerts] == ["dropouts", "silent_party"]
    assert "party c has been silent for 3 rounds" in alerts[1][1]
    assert any("silent" in r.getMessage() for r in caplog.records)
    db = sqlite3.connect(tmp_path / "audit.db")
    audited = [
        json.loads(d)["kind"]
        for (d,) in db.execute("SELECT details FROM records WHERE event = 'monitor.alert'")
    ]
    db.close()
    assert audited == ["dropouts", "silent_party"]


def test_monitor_table_is_validated() -> None:
    job = _psi_job(plateau_rounds=2, round_time_limit=30)
    assert job.monitor.plateau_rounds == 2 and job.monitor.round_time_limit == 30.0
    with pytest.raises(ConfigError, match="unknown key monitor.patience"):
        _psi_job(patience=3)
    with pytest.raises(ConfigError, match="monitor.max_dropout must be in"):
        _psi_job(max_dropout=1.5)
    with pytest.raises(ConfigError, match="monitor.round_time_limit must be > 0"):
        _psi_job(round_time_limit=0)


def test_a_failed_head_exchange_is_recorded_and_does_not_fail_the_job(tmp_path: Path) -> None:
    from vfl.jobs._finish import exchange_job_heads

    job = parse_job(
        {
            "job": {"id": "late", "type": "psi"},
            "parties": {n: {"data": f"{n}.csv", "id_column": "id"} for n in ("a", "b")},
        }
    )
    net = InMemoryNetwork(["a", "b"], job_id="late", seed=0)
    channel = MeteredChannel(net.channel("a"))
    identity = PartyIdentity(net.signing_key("a"), net.verify_keys)
    tracker = JobTracker(job, party="a", channel=channel, work_dir=tmp_path, identity=identity)
    tracker.start()
    net.kill("b")  # the peer went away after training
    out = exchange_job_heads(job, "a", channel, tracker)
    tracker.close()
    assert "PeerDown" in out["error"] and "peer_heads" not in out
    assert out["head"]["seq"] == 2  # job.started, job.participants
    events = (tmp_path / "runs" / "late" / "a" / "events.jsonl").read_text().splitlines()
    assert json.loads(events[-1])["alert"] == "head_exchange"
    db = sqlite3.connect(tmp_path / "audit.db")
    (details,) = db.execute(
        "SELECT details FROM records WHERE event = 'audit.head_exchange_failed'"
    ).fetchone()
    db.close()
    assert json.loads(details)["error"] == out["error"]
