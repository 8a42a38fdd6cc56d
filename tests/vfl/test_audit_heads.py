"""End-of-job chain-head exchange over the in-memory network, and truncation caught by peers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from crypto.keys import VerifyKey
from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.governance import (
    AuditError,
    AuditLog,
    EventKind,
    SignedHead,
    build_report,
    exchange_heads,
    load_heads_file,
    verify,
    write_heads_file,
)

from ._governance_helpers import StepClock, key, raw_sql

PARTIES = {"bank": 1, "retailer": 2}


def _logs(tmp_path: Path) -> dict[str, AuditLog]:
    logs = {}
    for party, seed in PARTIES.items():
        log = AuditLog(
            tmp_path / f"{party}.db", party=party, signing_key=key(seed), now=StepClock()
        )
        for r in range(1, 4):
            log.append(EventKind.ROUND_METRICS, {"round": r}, actor=party)
        logs[party] = log
    return logs


def _exchange(
    logs: dict[str, AuditLog], expected_keys: Mapping[str, VerifyKey] | None = None
) -> dict[str, dict[str, SignedHead]]:
    net = InMemoryNetwork(sorted(logs), job_id="job-7", seed=0)

    def party(name: str) -> Callable[[Channel], dict[str, SignedHead]]:
        def run(channel: Channel) -> dict[str, SignedHead]:
            return exchange_heads(
                channel, logs[name], job_id="job-7", timeout=10.0, expected_keys=expected_keys
            )

        return run

    return run_parties({name: party(name) for name in logs}, network=net, timeout=30.0)


def test_exchange_stores_peer_heads_and_catches_truncation(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    pinned = {p: key(s).verify_key for p, s in PARTIES.items()}
    results = _exchange(logs, expected_keys=pinned)
    assert results["retailer"]["bank"].seq == 3 and results["bank"]["retailer"].seq == 3
    held_by_retailer = logs["retailer"].peer_heads("bank")
    bank_records = list(logs["bank"].records())
    assert len(held_by_retailer) == 1
    assert held_by_retailer[0].hash == bank_records[2].hash.hex()
    assert held_by_retailer[0].job_id == "job-7"
    # the peer head is also recorded in the retailer's own chain
    last = list(logs["retailer"].records())[-1]
    assert last.event == EventKind.PEER_HEAD and last.details["peer"] == "bank"
    for log in logs.values():
        log.close()

    bank_path = tmp_path / "bank.db"
    assert verify(bank_path, verify_key=pinned["bank"], peer_heads=held_by_retailer).ok
    # the bank cuts its log back (deleting the end of the job and the retailer's head record)
    raw_sql(bank_path, "DELETE FROM records WHERE seq >= 3")
    result = verify(bank_path, verify_key=pinned["bank"], peer_heads=held_by_retailer)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.reason is not None and "truncated" in result.reason

    report = build_report(tmp_path / "retailer.db", verify_key=pinned["retailer"])
    assert [(h["party"], h["signature_valid"]) for h in report["peer_heads"]] == [("bank", True)]
    assert [r["event"] for r in report["integrity"]] == ["audit.peer_head"]

    heads_file = tmp_path / "heads.json"
    write_heads_file(heads_file, held_by_retailer)
    assert load_heads_file(heads_file) == held_by_retailer


def test_head_signed_by_unpinned_key_refused(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    wrong = {"bank": key(1).verify_key, "retailer": key(3).verify_key}
    with pytest.raises(AuditError, match="retailer"):
        _exchange(logs, expected_keys=wrong)
    for log in logs.values():
        log.close()


def test_log_of_other_party_refused(tmp_path: Path) -> None:
    logs = _logs(tmp_path)
    swapped = {"bank": logs["retailer"], "retailer": logs["bank"]}
    with pytest.raises(AuditError, match="used on the channel"):
        _exchange(swapped)
    for log in logs.values():
        log.close()
