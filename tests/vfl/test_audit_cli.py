"""``vfl audit verify|export|heads`` run as a user runs them: a subprocess, exit code, one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from vfl.governance import AuditLog

from ._governance_helpers import StepClock, key, make_log, raw_sql, run_vfl, tamper_kinds


def vfl(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """The real ``vfl`` entry point (``python -m vfl.cli``), as a user runs it."""
    return run_vfl(*argv)


@pytest.fixture()
def pubkey(tmp_path: Path) -> Path:
    path = tmp_path / "bank.pub.pem"
    key(1).verify_key.save(path)
    return path


def test_verify_ok(tmp_path: Path, pubkey: Path) -> None:
    make_log(tmp_path / "a.db").close()
    done = vfl("audit", "verify", tmp_path / "a.db", "--key", pubkey, "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["records"] == 6 and result["key_pinned"] is True


@pytest.mark.slow
def test_verify_names_each_tampered_record(tmp_path: Path, pubkey: Path) -> None:
    for kind, tamper in sorted(tamper_kinds().items()):
        path = tmp_path / f"{kind}.db"
        make_log(path).close()
        seq, word = tamper(path)
        done = vfl("audit", "verify", path, "--key", pubkey)
        assert done.returncode == 1, (kind, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, (kind, done.stderr)
        assert f"record {seq}:" in lines[0] and word in lines[0], (kind, lines[0])


def test_verify_truncation_with_peer_heads_file(tmp_path: Path, pubkey: Path) -> None:
    bank = make_log(tmp_path / "bank.db")
    retailer = AuditLog(tmp_path / "r.db", party="retailer", signing_key=key(2), now=StepClock())
    retailer.store_peer_head(bank.head(job_id="job-1"))
    bank.close()
    retailer.close()
    heads = tmp_path / "heads.json"
    done = vfl("audit", "heads", tmp_path / "r.db", "--out", heads, "--party", "bank", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["heads"] == 1
    from ._governance_helpers import raw_sql

    raw_sql(tmp_path / "bank.db", "DELETE FROM records WHERE seq = 6")
    assert vfl("audit", "verify", tmp_path / "bank.db", "--key", pubkey).returncode == 0
    done = vfl("audit", "verify", tmp_path / "bank.db", "--key", pubkey, "--heads", heads)
    assert done.returncode == 1
    assert "record 6:" in done.stderr and "truncated" in done.stderr


def test_export_csv_and_bad_input(tmp_path: Path, pubkey: Path) -> None:
    make_log(tmp_path / "a.db").close()
    out = tmp_path / "r.csv"
    done = vfl(
        "audit", "export", tmp_path / "a.db", "--format", "csv", "--out", out,
        "--key", pubkey, "--since", "2026-01-01T00:00:02", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] == 4
    assert len(out.read_text().splitlines()) == 5
    done = vfl("audit", "verify", tmp_path / "missing.db")
    assert done.returncode == 2 and done.stderr.startswith("vfl: error: no audit log")
    done = vfl("audit", "verify", tmp_path / "a.db")  # no --key: warns, still verifies
    assert done.returncode == 0 and "trusting the public key stored" in done.stderr


def test_verify_with_another_partys_key_says_the_key_does_not_match(tmp_path: Path) -> None:
    # Keys as `vfl certs init` makes them: the retailer's public key given for the bank's log.
    fed = tmp_path / "fed"
    done = vfl("certs", "init", "--parties", "bank,retailer", "--out", fed)
    assert done.returncode == 0, done.stderr
    from crypto.keys import SigningKey

    signing = SigningKey.load(fed / "bank" / "signing.key")
    log = AuditLog(tmp_path / "a.db", party="bank", signing_key=signing, now=StepClock())
    for i in range(4):
        log.append("train.round_metrics", {"round": i + 1}, actor="bank")
    log.close()
    wrong = vfl("audit", "verify", tmp_path / "a.db", "--key", fed / "retailer" / "signing.pub.pem")
    assert wrong.returncode == 1
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1, wrong.stderr
    assert "the key given does not match" in lines[0] and "tampered" not in lines[0]
    assert "verifies none of the 4 records" in lines[0]
    right = vfl("audit", "verify", tmp_path / "a.db", "--key", fed / "bank" / "signing.pub.pem")
    assert right.returncode == 0, right.stderr
    # A record rewritten in a log checked with the right key is still tampering, not a key issue.
    raw_sql(tmp_path / "a.db", "UPDATE records SET signature = X'00' WHERE seq = 2")
    tampered = vfl("audit", "verify", tmp_path / "a.db", "--key", fed / "bank" / "signing.pub.pem")
    assert tampered.returncode == 1 and "tampered: record 2:" in tampered.stderr
    assert "does not match" not in tampered.stderr
