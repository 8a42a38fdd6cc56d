"""`vfl run` as two OS processes over mutual-TLS gRPC leaves a verifiable, registered record."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.vfl.test_hetero_lr_grpc import _setup

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")
PARTIES = ("bank", "retailer")


def vfl(*args: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vfl.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.grpc
def test_vfl_run_audits_registers_and_exchanges_heads(tmp_path: Path) -> None:
    job, federation = _setup(tmp_path, scheme="paillier", key_bits=1024)
    procs = {
        party: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vfl.cli.run",
                str(job),
                "--config",
                str(federation),
                "--party",
                party,
                "--work-dir",
                str(tmp_path / party),
                "--json",
                "--insecure-small-keys",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=ROOT,
        )  # fmt: skip
        for party in PARTIES
    }
    out = {}
    for party, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        out[party] = json.loads(stdout.strip().splitlines()[-1])
    fed = federation.parent
    for party in PARTIES:
        peer = next(p for p in PARTIES if p != party)
        work = tmp_path / party
        run_dir = Path(out[party]["run_dir"])
        assert json.loads((run_dir / "result.json").read_text()) == out[party]
        status = json.loads((run_dir / "status.json").read_text())
        assert status["phase"] == "done" and status["round"] == 3
        rounds = [
            line
            for line in (run_dir / "events.jsonl").read_text().splitlines()
            if '"round"' in line
        ]
        assert len([r for r in rounds if '"kind":"round"' in r]) == 3
        # The log verifies against the federation's public key and the peer's signed head.
        done = vfl(
            "audit", "verify", work / "audit.db", "--key", fed / party / "signing.pub.pem",
            "--heads", tmp_path / peer / "audit.db", "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["ok"] and report["heads_checked"] == 1 and report["key_pinned"]
        # The participants record names both parties' key and certificate fingerprints.
        db = sqlite3.connect(work / "audit.db")
        (details,) = db.execute(
            "SELECT details FROM records WHERE event = 'job.participants'"
        ).fetchone()
        db.close()
        identities = json.loads(details)["identities"]
        assert all(
            len(identities[p]["tls_cert_sha256"]) == 64
            and len(identities[p]["signing_key_sha256"]) == 64
            for p in PARTIES
        )
        # The registry holds this party's part as a candidate, the same version everywhere.
        assert out[party]["model"] == {
            "name": "hetero_lr-bank-retailer",
            "version": "0.1.0",
            "stage": "candidate",
        }
        listing = vfl("models", "list", "--work-dir", work, "--json")
        assert listing.returncode == 0, listing.stderr
        (model,) = json.loads(listing.stdout)["models"]
        assert model["metadata"]["validation_metrics"]["test_auc"] > 0.9
    # A truncated log fails `vfl audit verify` against the peer's head.
    cut = tmp_path / "cut.db"
    shutil.copy(tmp_path / "bank" / "audit.db", cut)
    db = sqlite3.connect(cut)
    db.execute("DROP TRIGGER records_no_delete")
    db.execute(  # cut the tail from the job's last record on: the head the retailer holds
        "DELETE FROM records WHERE seq >= (SELECT seq FROM records WHERE event = 'job.finished')"
    )
    db.commit()
    db.close()
    done = vfl(
        "audit", "verify", cut, "--key", fed / "bank" / "signing.pub.pem",
        "--heads", tmp_path / "retailer" / "audit.db",
    )  # fmt: skip
    assert done.returncode == 1 and "truncated" in done.stderr
    # Promotion is recorded in the work dir's audit log, signed with the federation key.
    promote = vfl(
        "models", "promote", "hetero_lr-bank-retailer", "0.1.0", "--to", "staging",
        "--work-dir", tmp_path / "bank", "--config", federation, "--json",
    )  # fmt: skip
    assert promote.returncode == 0, promote.stderr
    assert json.loads(promote.stdout)["stage"] == "staging"
    done = vfl(
        "audit", "verify", tmp_path / "bank" / "audit.db", "--key", fed / "bank" / "signing.pub.pem"
    )
    assert done.returncode == 0, done.stderr
