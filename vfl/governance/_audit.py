"""The per-party audit log: an append-only, hash-chained, Ed25519-signed SQLite file.

Tables (``_SCHEMA``): ``meta`` (party, public key, format), ``records`` (the chain, see
:mod:`._records`), ``payloads`` (bulky round payloads, referenced from the chain by SHA-256 so a
retention policy can delete them without breaking the chain) and ``heads`` (signed chain heads
received from peers). SQLite triggers ``RAISE(ABORT)`` on any UPDATE or DELETE of ``meta``,
``records`` and ``heads`` (and on UPDATE of ``payloads``), so ordinary SQL cannot rewrite history;
editing the file directly is still caught by :func:`vfl.governance.verify`. The file is created
readable by its owner only (0600).

>>> import tempfile, pathlib
>>> from crypto.keys import SigningKey
>>> from crypto.random import SeededRandom
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audit.db"
>>> log = AuditLog(path, party="bank", signing_key=SigningKey.generate(rng=SeededRandom(0)))
>>> log.append("job.started", {"job_id": "j1"}, actor="bank").seq
1
>>> log.close()
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crypto.keys import SigningKey
from vfl.governance._canonical import Clock, canonical_json, format_time, utc_now
from vfl.governance._errors import AuditError
from vfl.governance._records import (
    GENESIS,
    AuditRecord,
    SignedHead,
    chain_hash,
    record_preimage,
)

__all__ = ["AuditLog", "FORMAT_VERSION", "DEFAULT_RETENTION", "FILE_MODE"]

_log = logging.getLogger("vfl.governance.audit")

FORMAT_VERSION = 1
DEFAULT_RETENTION = timedelta(days=90)
FILE_MODE = 0o600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    details TEXT NOT NULL,
    payload_hash TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS payloads (
    hash TEXT PRIMARY KEY,
    time TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS heads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    party TEXT NOT NULL,
    job_id TEXT NOT NULL,
    head TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS meta_no_update BEFORE UPDATE ON meta
    BEGIN SELECT RAISE(ABORT, 'audit meta is append-only'); END;
CREATE TRIGGER IF NOT EXISTS meta_no_delete BEFORE DELETE ON meta
    BEGIN SELECT RAISE(ABORT, 'audit meta is append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
    BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS heads_no_update BEFORE UPDATE ON heads
    BEGIN SELECT RAISE(ABORT, 'audit heads are append-only'); END;
CREATE TRIGGER IF NOT EXISTS heads_no_delete BEFORE DELETE ON heads
    BEGIN SELECT RAISE(ABORT, 'audit heads are append-only'); END;
CREATE TRIGGER IF NOT EXISTS payloads_no_update BEFORE UPDATE ON payloads
    BEGIN SELECT RAISE(ABORT, 'audit payloads cannot be changed, only expired'); END;
"""


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 (before SQLite opens it), or tighten an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def records_query(
    *, since: datetime | None = None, until: datetime | None = None
) -> tuple[str, list[str]]:
    """SQL (without ORDER BY) and arguments selecting the records with ``since <= time < until``."""
    where, args = [], []
    if since is not None:
        where.append("time >= ?")
        args.append(format_time(since))
    if until is not None:
        where.append("time < ?")
        args.append(format_time(until))
    return "SELECT * FROM records" + (" WHERE " + " AND ".join(where) if where else ""), args


def row_to_record(row: tuple[Any, ...]) -> AuditRecord:
    """Build an :class:`AuditRecord` from a ``records`` row (``SELECT *`` column order)."""
    seq, time, actor, event, details, payload_hash, prev_hash, hash_, signature = row
    return AuditRecord(
        seq=int(seq),
        time=str(time),
        actor=str(actor),
        event=str(event),
        details=json.loads(details),
        payload_hash=payload_hash,
        prev_hash=bytes(prev_hash),
        hash=bytes(hash_),
        signature=bytes(signature),
    )


class AuditLog:
    """One party's audit log; create or reopen with the party's audit signing key.

    ``now`` is the injected clock (default: UTC wall time). Thread-safe (one lock per log).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        party: str,
        signing_key: SigningKey,
        now: Clock | None = None,
    ) -> None:
        if not party:
            raise AuditError("an audit log needs a party name")
        self.path = Path(path)
        self.party = party
        self._key = signing_key
        self._now: Clock = now or utc_now
        self._lock = threading.Lock()
        _create_private_file(self.path)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        public = signing_key.verify_key.to_base64()
        if not meta:
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("party", party), ("public_key", public), ("format", str(FORMAT_VERSION))],
            )
        elif meta.get("party") != party:
            raise AuditError(f"audit log {self.path} belongs to party {meta.get('party')!r}")
        elif meta.get("public_key") != public:
            raise AuditError(f"audit log {self.path} was created with another signing key")

    # -- writing ------------------------------------------------------------------------------

    def append(
        self,
        event: str,
        details: Mapping[str, Any] | None = None,
        *,
        actor: str,
        payload: bytes | None = None,
    ) -> AuditRecord:
        """Append one signed record; ``payload`` (optional bulky bytes) goes to the payload table.

        The record stores ``SHA-256(payload)`` so the chain still verifies once retention has
        deleted the payload.
        """
        body = dict(details or {})
        canonical_json(body)  # refuse non-JSON details before touching the file
        with self._lock:
            time = format_time(self._now())
            payload_hash = None if payload is None else hashlib.sha256(payload).hexdigest()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                last = self._db.execute(
                    "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq = 1 if last is None else int(last[0]) + 1
                prev = GENESIS if last is None else bytes(last[1])
                preimage = record_preimage(
                    prev_hash=prev,
                    party=self.party,
                    seq=seq,
                    time=time,
                    actor=actor,
                    event=str(event),
                    details=body,
                    payload_hash=payload_hash,
                )
                record = AuditRecord(
                    seq=seq,
                    time=time,
                    actor=actor,
                    event=str(event),
                    details=body,
                    payload_hash=payload_hash,
                    prev_hash=prev,
                    hash=chain_hash(preimage),
                    signature=self._key.sign(preimage),
                )
                if payload is not None:
                    self._db.execute(
                        "INSERT OR IGNORE INTO payloads (hash, time, data) VALUES (?, ?, ?)",
                        (payload_hash, time, payload),
                    )
                self._db.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        seq,
                        time,
                        actor,
                        record.event,
                        canonical_json(body).decode("utf-8"),
                        payload_hash,
                        prev,
                        record.hash,
                        record.signature,
                    ),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        _log.debug("audit %s: record %d %s", self.party, seq, event)
        return record

    def head(self, *, job_id: str) -> SignedHead:
        """This party's signed chain head now (seq 0 and the genesis hash for an empty log)."""
        with self._lock:
            last = self._db.execute(
                "SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            time = format_time(self._now())
        seq, digest = (0, GENESIS) if last is None else (int(last[0]), bytes(last[1]))
        return SignedHead.sign(
            self._key, party=self.party, job_id=job_id, seq=seq, hash=digest.hex(), time=time
        )

    def store_peer_head(self, head: SignedHead) -> None:
        """Verify a peer's head and keep it (append-only); also record the fact in the chain."""
        head.verify()
        if head.party == self.party:
            raise AuditError("a party does not store its own head as a peer head")
        with self._lock:
            self._db.execute(
                "INSERT INTO heads (party, job_id, head) VALUES (?, ?, ?)",
                (head.party, head.job_id, canonical_json(head.to_dict()).decode("utf-8")),
            )
        self.append(
            "audit.peer_head",
            {"peer": head.party, "job_id": head.job_id, "seq": head.seq, "hash": head.hash},
            actor=self.party,
        )

    def peer_heads(self, party: str | None = None) -> list[SignedHead]:
        """The signed heads received from peers (optionally only ``party``'s), oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT head FROM heads ORDER BY id").fetchall()
        heads = [SignedHead.from_dict(json.loads(row[0])) for row in rows]
        return [h for h in heads if party is None or h.party == party]

    def apply_retention(
        self, *, max_age: timedelta = DEFAULT_RETENTION, actor: str | None = None
    ) -> int:
        """Delete payloads older than ``max_age`` (never chain metadata); audit the deletion.

        Returns how many payloads were deleted. The deletion is itself a chain record
        (``audit.retention``) naming the cutoff and the deleted payload hashes.
        """
        if max_age < timedelta(0):
            raise AuditError("retention max_age must not be negative")
        cutoff = format_time(self._now() - max_age)
        with self._lock:
            rows = self._db.execute(
                "SELECT hash FROM payloads WHERE time < ? ORDER BY hash", (cutoff,)
            ).fetchall()
            self._db.execute("DELETE FROM payloads WHERE time < ?", (cutoff,))
        deleted = [str(row[0]) for row in rows]
        self.append(
            "audit.retention",
            {
                "cutoff": cutoff,
                "max_age_days": max_age.total_seconds() / 86400,
                "deleted": len(deleted),
                "payload_hashes": deleted,
            },
            actor=actor or self.party,
        )
        return len(deleted)

    # -- reading ------------------------------------------------------------------------------

    def records(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[AuditRecord]:
        """The records in chain order, optionally those with ``since <= time < until``."""
        query, args = records_query(since=since, until=until)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return iter([row_to_record(row) for row in rows])

    def payload(self, payload_hash: str) -> bytes | None:
        """A payload by its hash, or ``None`` once retention has deleted it."""
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM payloads WHERE hash = ?", (payload_hash,)
            ).fetchone()
        return None if row is None else bytes(row[0])

    @property
    def public_key(self) -> str:
        """The audit verify key, base64 (as in ``federation.toml``)."""
        return base64.b64encode(self._key.verify_key.public_bytes()).decode("ascii")

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
