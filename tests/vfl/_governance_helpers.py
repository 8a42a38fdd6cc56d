"""Shared fixtures of the audit and registry tests: deterministic keys and clocks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crypto.keys import SigningKey
from crypto.random import SeededRandom
from vfl.governance import AuditLog

START = datetime(2026, 1, 1, tzinfo=UTC)


class StepClock:
    """A clock that advances ``step`` per call, from ``start``; ``jump`` moves it forward."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        value = self.now
        self.now += self.step
        return value

    def jump(self, delta: timedelta) -> None:
        self.now += delta


def key(seed: int) -> SigningKey:
    return SigningKey.generate(rng=SeededRandom(seed))


def make_log(path: Path, *, party: str = "bank", seed: int = 1, records: int = 6) -> AuditLog:
    log = AuditLog(path, party=party, signing_key=key(seed), now=StepClock())
    for i in range(records):
        log.append("train.round_metrics", {"round": i + 1, "loss": 1.0 / (i + 1)}, actor=party)
    return log


def raw_sql(path: Path, *statements: str) -> None:
    """Tamper the way an attacker with file access would: drop the guards, then edit."""
    db = sqlite3.connect(path)
    try:
        db.execute("DROP TRIGGER IF EXISTS records_no_update")
        db.execute("DROP TRIGGER IF EXISTS records_no_delete")
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def tamper_kinds() -> dict[str, Callable[[Path], tuple[int, str]]]:
    """Each tampering kind -> a function applying it to a 6-record log; returns (seq, reason word)."""

    def edited(path: Path) -> tuple[int, str]:
        raw_sql(path, 'UPDATE records SET details = \'{"loss":0.01,"round":3}\' WHERE seq = 3')
        return 3, "edited"

    def rewritten(path: Path) -> tuple[int, str]:
        # Edit and recompute the hash (but the attacker has no signing key).
        from vfl.governance._records import chain_hash, record_preimage

        db = sqlite3.connect(path)
        row = db.execute(
            "SELECT time, actor, event, prev_hash FROM records WHERE seq = 3"
        ).fetchone()
        db.close()
        details = {"loss": 0.01, "round": 3}
        preimage = record_preimage(
            prev_hash=bytes(row[3]),
            party="bank",
            seq=3,
            time=row[0],
            actor=row[1],
            event=row[2],
            details=details,
            payload_hash=None,
        )
        new_hash = chain_hash(preimage).hex()
        raw_sql(
            path,
            'UPDATE records SET details = \'{"loss":0.01,"round":3}\', '
            f"hash = X'{new_hash}' WHERE seq = 3",
        )
        return 3, "signature"

    def deleted(path: Path) -> tuple[int, str]:
        raw_sql(path, "DELETE FROM records WHERE seq = 4")
        return 4, "missing"

    def deleted_renumbered(path: Path) -> tuple[int, str]:
        raw_sql(
            path,
            "DELETE FROM records WHERE seq = 4",
            "UPDATE records SET seq = seq - 1 WHERE seq > 4",
        )
        return 4, "does not chain"

    def inserted(path: Path) -> tuple[int, str]:
        raw_sql(
            path,
            "UPDATE records SET seq = seq + 100 WHERE seq >= 3",
            "UPDATE records SET seq = seq - 99 WHERE seq >= 103",
            "INSERT INTO records SELECT 3, time, actor, event, details, payload_hash, "
            "prev_hash, hash, signature FROM records WHERE seq = 1",
        )
        return 3, "does not chain"

    def reordered(path: Path) -> tuple[int, str]:
        raw_sql(
            path,
            "UPDATE records SET seq = 100 WHERE seq = 3",
            "UPDATE records SET seq = 3 WHERE seq = 4",
            "UPDATE records SET seq = 4 WHERE seq = 100",
        )
        return 3, "reordered"

    return {
        "edited": edited,
        "rewritten": rewritten,
        "deleted": deleted,
        "deleted_renumbered": deleted_renumbered,
        "inserted": inserted,
        "reordered": reordered,
    }


def run_vfl(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vfl.cli ARGV...`` in the repository root; exit code and output, no raise."""
    return subprocess.run(
        [sys.executable, "-m", "vfl.cli", *map(str, argv)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
