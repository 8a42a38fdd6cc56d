"""The audit log: chain, signatures, append-only guards, tampering detection, retention, export."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vfl.governance import (
    AuditError,
    AuditLog,
    AuditTampered,
    EventKind,
    GovernanceError,
    export_report,
    record_crypto,
    record_dp_parameters,
    record_participants,
    record_round_metrics,
    verify,
)
from vfl.governance._records import GENESIS, chain_hash, record_preimage

from ._governance_helpers import START, StepClock, key, make_log, raw_sql, tamper_kinds


def test_chain_links_and_known_hash(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a.db", records=3)
    records = list(log.records())
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS
    for before, after in zip(records, records[1:], strict=False):
        assert after.prev_hash == before.hash
    first = records[0]
    expected = chain_hash(
        b"vfl/audit/record/v1\x00"
        + GENESIS
        + b'{"actor":"bank","details":{"loss":1.0,"round":1},"event":"train.round_metrics",'
        b'"party":"bank","payload_hash":null,"seq":1,"time":"2026-01-01T00:00:00.000000+00:00"}'
    )
    assert first.hash == expected
    log.close()
    result = verify(tmp_path / "a.db", verify_key=key(1).verify_key)
    assert result.ok and result.records == 3 and result.last_hash == records[-1].hash.hex()


def test_file_is_owner_only(tmp_path: Path) -> None:
    make_log(tmp_path / "a.db").close()
    assert stat.S_IMODE(os.stat(tmp_path / "a.db").st_mode) == 0o600


def test_triggers_refuse_update_and_delete(tmp_path: Path) -> None:
    make_log(tmp_path / "a.db").close()
    db = sqlite3.connect(tmp_path / "a.db")
    try:
        for statement in (
            "UPDATE records SET actor = 'x' WHERE seq = 1",
            "DELETE FROM records WHERE seq = 6",
            "DELETE FROM meta",
            "UPDATE meta SET value = 'x'",
        ):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                db.execute(statement)
    finally:
        db.close()
    assert verify(tmp_path / "a.db", verify_key=key(1).verify_key).ok


def test_reopen_continues_chain_and_checks_key(tmp_path: Path) -> None:
    make_log(tmp_path / "a.db", records=2).close()
    log = AuditLog(tmp_path / "a.db", party="bank", signing_key=key(1), now=StepClock())
    assert log.append("job.started", {"job_id": "j"}, actor="bank").seq == 3
    log.close()
    with pytest.raises(AuditError, match="another signing key"):
        AuditLog(tmp_path / "a.db", party="bank", signing_key=key(2))
    with pytest.raises(AuditError, match="belongs to party"):
        AuditLog(tmp_path / "a.db", party="retailer", signing_key=key(1))
    assert verify(tmp_path / "a.db", verify_key=key(1).verify_key).records == 3


def test_non_json_details_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a.db", records=0)
    with pytest.raises(GovernanceError, match="not JSON"):
        log.append("x", {"bad": object()}, actor="bank")
    with pytest.raises(GovernanceError, match="canonical"):
        log.append("x", {"nan": float("nan")}, actor="bank")
    assert list(log.records()) == []
    log.close()


@pytest.mark.parametrize("kind", sorted(tamper_kinds()))
def test_each_tampering_kind_is_detected_and_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "a.db"
    make_log(path).close()
    seq, word = tamper_kinds()[kind](path)
    result = verify(path, verify_key=key(1).verify_key)
    assert not result.ok
    assert result.first_bad_seq == seq
    assert result.reason is not None and word in result.reason
    with pytest.raises(AuditTampered, match=f"record {seq}") as info:
        result.raise_for_tampering()
    assert info.value.seq == seq


def test_byte_level_file_edit_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    log = make_log(path, records=0)
    for i in range(4):
        log.append("payment", {"amount": f"AMOUNT{i}=100"}, actor="bank")
    log.close()
    data = path.read_bytes()
    assert data.count(b"AMOUNT2=100") == 1
    path.write_bytes(data.replace(b"AMOUNT2=100", b"AMOUNT2=999"))
    result = verify(path, verify_key=key(1).verify_key)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason is not None and "edited" in result.reason


def test_forged_appended_record_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    make_log(path, records=3).close()
    db = sqlite3.connect(path)
    prev = bytes(db.execute("SELECT hash FROM records WHERE seq = 3").fetchone()[0])
    db.close()
    preimage = record_preimage(
        prev_hash=prev,
        party="bank",
        seq=4,
        time="2026-01-01T00:00:09.000000+00:00",
        actor="bank",
        event="model.approved",
        details={},
        payload_hash=None,
    )
    forged = key(99).sign(preimage)
    raw_sql(
        path,
        f"INSERT INTO records VALUES (4, '2026-01-01T00:00:09.000000+00:00', 'bank', "
        f"'model.approved', '{{}}', NULL, X'{prev.hex()}', X'{chain_hash(preimage).hex()}', "
        f"X'{forged.hex()}')",
    )
    result = verify(path, verify_key=key(1).verify_key)
    assert result.first_bad_seq == 4 and result.reason is not None
    assert "signature" in result.reason


def test_wrong_pinned_key_fails_at_first_record(tmp_path: Path) -> None:
    make_log(tmp_path / "a.db").close()
    result = verify(tmp_path / "a.db", verify_key=key(2).verify_key)
    assert (result.ok, result.first_bad_seq) == (False, 1)
    assert result.warnings


def test_truncation_detected_only_against_peer_heads(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    log = make_log(path)
    head = log.head(job_id="job-1")
    log.close()
    assert head.seq == 6
    raw_sql(path, "DELETE FROM records WHERE seq > 4")
    assert verify(path, verify_key=key(1).verify_key).ok  # a prefix is a valid chain on its own
    result = verify(path, verify_key=key(1).verify_key, peer_heads=[head])
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.reason is not None and "truncated" in result.reason


def test_rewritten_tail_detected_against_head(tmp_path: Path) -> None:
    """Truncate, then append new genuine records: the head's record differs (history rewritten)."""
    path = tmp_path / "a.db"
    log = make_log(path)
    head = log.head(job_id="job-1")
    log.close()
    raw_sql(path, "DELETE FROM records WHERE seq > 4")
    log = AuditLog(path, party="bank", signing_key=key(1), now=StepClock(START + timedelta(days=1)))
    for _ in range(3):
        log.append("job.started", {"job_id": "other"}, actor="bank")
    log.close()
    result = verify(path, verify_key=key(1).verify_key, peer_heads=[head])
    assert (result.ok, result.first_bad_seq) == (False, 6)
    assert result.reason is not None and "rewritten" in result.reason


def test_forged_head_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a.db")
    head = log.head(job_id="job-1")
    log.close()
    forged = type(head)(**{**head.to_dict(), "seq": 99})
    result = verify(tmp_path / "a.db", verify_key=key(1).verify_key, peer_heads=[forged])
    assert not result.ok and result.reason is not None and "does not verify" in result.reason


def test_retention_deletes_old_payloads_only_and_is_audited(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    clock = StepClock()
    log = AuditLog(path, party="bank", signing_key=key(1), now=clock)
    old = record_round_metrics(
        log, job_id="j", round=1, metrics={"loss": 0.5}, actor="bank", payload={"grad": [1, 2]}
    )
    clock.jump(timedelta(days=100))
    new = record_round_metrics(
        log, job_id="j", round=2, metrics={"loss": 0.4}, actor="bank", payload={"grad": [3, 4]}
    )
    assert old.payload_hash is not None and new.payload_hash is not None
    assert log.payload(old.payload_hash) == b'{"grad":[1,2]}'
    assert log.apply_retention() == 1
    assert log.payload(old.payload_hash) is None
    assert log.payload(new.payload_hash) is not None
    last = list(log.records())[-1]
    assert last.event == EventKind.RETENTION
    assert last.details["deleted"] == 1 and last.details["payload_hashes"] == [old.payload_hash]
    assert [r.seq for r in log.records()] == [1, 2, 3]
    log.close()
    assert verify(path, verify_key=key(1).verify_key).ok


def test_payloads_cannot_be_updated(tmp_path: Path) -> None:
    log = make_log(tmp_path / "a.db", records=0)
    record_round_metrics(log, job_id="j", round=1, metrics={}, actor="bank", payload={"a": 1})
    log.close()
    db = sqlite3.connect(tmp_path / "a.db")
    with pytest.raises(sqlite3.DatabaseError, match="cannot be changed"):
        db.execute("UPDATE payloads SET data = X'00'")
    db.close()


def _job_log(path: Path) -> None:
    clock = StepClock(step=timedelta(days=1))
    log = AuditLog(path, party="bank", signing_key=key(1), now=clock)
    record_participants(
        log, job_id="j", participants={"bank": "label", "retailer": "feature"}, actor="bank"
    )
    record_crypto(log, job_id="j", scheme="paillier", key_bits=2048, actor="bank")
    record_dp_parameters(
        log,
        job_id="j",
        noise_multiplier=1.1,
        max_grad_norm=1.0,
        target_epsilon=3.0,
        delta=1e-5,
        actor="bank",
    )
    for r in range(1, 4):
        record_round_metrics(log, job_id="j", round=r, metrics={"loss": 1 / r}, actor="bank")
    log.close()


def test_export_json_sections_and_date_range(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _job_log(path)
    out = tmp_path / "report.json"
    report = export_report(
        path,
        out=out,
        format="json",
        verify_key=key(1).verify_key,
        since=START + timedelta(days=1),
        until=START + timedelta(days=4),
    )
    written = json.loads(out.read_text())
    assert written == report
    assert written["verification"]["ok"] is True
    assert written["records"] == 3
    assert [r["event"] for r in written["privacy"]] == ["crypto.scheme", "privacy.dp_parameters"]
    assert [r["details"]["round"] for r in written["lineage"]] == [1]
    assert written["integrity"] == []  # participants is day 0, outside the range
    assert not list(tmp_path.glob(".report.json.*"))  # no temp file left behind


def test_export_csv(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    _job_log(path)
    out = tmp_path / "report.csv"
    export_report(path, out=out, format="csv", verify_key=key(1).verify_key)
    rows = list(csv.DictReader(out.open()))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["category"] == "integrity" and rows[1]["category"] == "privacy"
    assert json.loads(rows[1]["details"]) == {"job_id": "j", "key_bits": 2048, "scheme": "paillier"}
    with pytest.raises(AuditError, match="unknown export format"):
        export_report(path, out=out, format="xml", verify_key=key(1).verify_key)


@settings(max_examples=10, deadline=None)
@given(
    details=st.lists(
        st.dictionaries(
            st.text(min_size=1, max_size=8),
            st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none()),
            max_size=4,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_json_details_round_trip_and_verify(
    tmp_path_factory: pytest.TempPathFactory, details: list[dict[str, object]]
) -> None:
    path = tmp_path_factory.mktemp("h") / "a.db"
    log = AuditLog(path, party="bank", signing_key=key(1), now=StepClock())
    for item in details:
        log.append("event", item, actor="bank")
    assert [dict(r.details) for r in log.records()] == details
    log.close()
    assert verify(path, verify_key=key(1).verify_key).ok


def test_undecodable_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    make_log(path).close()
    raw_sql(path, "UPDATE records SET details = '{not json' WHERE seq = 5")
    result = verify(path, verify_key=key(1).verify_key)
    assert (result.ok, result.first_bad_seq) == (False, 5)
    assert result.reason == "record 5 cannot be decoded (edited)"


def test_not_an_audit_log(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AuditError, match="not a readable audit log"):
        verify(path, verify_key=key(1).verify_key)
