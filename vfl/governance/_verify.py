"""Verification of an audit log file: hash chain, signatures and peers' signed heads.

For the records ordered by ``seq`` (record ``i`` expected at seq ``i``), the first failing check
names the record:

1. ``seq`` continuity -- a gap means a deleted record, a repeat an inserted copy;
2. the link ``prev_hash == h_{i-1}`` -- a break means a record was inserted, deleted or reordered
   (when ``prev_hash`` is the hash of another record of the log the record was moved: reordered);
3. the hash ``h_i = SHA-256(DOMAIN || h_{i-1} || canonical(record_i))`` -- a mismatch means the
   content was edited in place;
4. the Ed25519 signature over that pre-image -- a failure means the record was rewritten or forged
   by someone without the party's key.

Then every signed head a peer holds for this party (``peer_heads``) must verify under this party's
key and match the record at its ``seq``; a head beyond the end of the log means truncation.
The key comes from the caller (pinned, e.g. from ``federation.toml``): a key read from the file
itself proves nothing against someone who rewrote the whole file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from crypto.keys import VerifyKey
from vfl._atomic import atomic_write
from vfl.governance._audit import row_to_record
from vfl.governance._errors import AuditError, AuditTampered, GovernanceError
from vfl.governance._records import GENESIS, SignedHead, chain_hash, record_preimage

__all__ = [
    "VerifyResult",
    "verify",
    "read_log_identity",
    "load_heads_file",
    "read_stored_heads",
    "write_heads_file",
]


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found. ``first_bad_seq`` / ``reason`` are ``None`` when ``ok``."""

    ok: bool
    party: str
    records: int
    last_seq: int
    last_hash: str
    heads_checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = field(default=())
    key_mismatch: bool = False

    def raise_for_tampering(self) -> None:
        """Raise :class:`AuditTampered` naming the first bad record unless ``ok``."""
        if not self.ok:
            raise AuditTampered(self.first_bad_seq or 0, self.reason or "unknown")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "party": self.party,
            "records": self.records,
            "last_seq": self.last_seq,
            "last_hash": self.last_hash,
            "heads_checked": self.heads_checked,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "warnings": list(self.warnings),
            "key_mismatch": self.key_mismatch,
        }


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise AuditError(f"no audit log at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def read_log_identity(path: str | Path) -> tuple[str, str]:
    """``(party, public key base64)`` as stored in the log's ``meta`` table (not trusted)."""
    try:
        db = _connect(Path(path))
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path} is not a readable audit log ({exc})") from None
    if "party" not in meta or "public_key" not in meta:
        raise AuditError(f"{path} has no party or public key in its meta table")
    return str(meta["party"]), str(meta["public_key"])


def _stored_key(text: str) -> VerifyKey | None:
    try:
        return VerifyKey.from_base64(text)
    except (CryptoError, ValueError):
        return None


def _verifies_any(records: list[Any], *, party: str, verify_key: VerifyKey) -> bool:
    """``True`` if ``verify_key`` verifies the signature of at least one record."""
    for record in records:
        try:
            preimage = record_preimage(
                prev_hash=record.prev_hash,
                party=party,
                seq=record.seq,
                time=record.time,
                actor=record.actor,
                event=record.event,
                details=record.details,
                payload_hash=record.payload_hash,
            )
            verify_key.verify(record.signature, preimage)
        except (CryptoError, GovernanceError):
            continue
        return True
    return False


def verify(
    path: str | Path,
    *,
    verify_key: VerifyKey,
    peer_heads: Iterable[SignedHead] = (),
) -> VerifyResult:
    """Check the log at ``path`` (module docstring); never raises for tampering, reports it."""
    path = Path(path)
    party, stored_key = read_log_identity(path)
    warnings: list[str] = []
    if stored_key != verify_key.to_base64():
        warnings.append("the log's stored public key differs from the key given")
    try:
        db = _connect(path)
        try:
            rows = db.execute("SELECT * FROM records ORDER BY seq, rowid").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path} is not a readable audit log ({exc})") from None
    records = []
    undecodable = False
    for row in rows:
        try:
            records.append(row_to_record(row))
        except (ValueError, TypeError):
            undecodable = True  # reported after the records before it are checked
            break

    by_hash = {r.hash: r.seq for r in records}
    prev = GENESIS

    def bad(seq: int, reason: str, count: int, heads: int = 0) -> VerifyResult:
        return VerifyResult(
            ok=False,
            party=party,
            records=count,
            last_seq=records[-1].seq if records else 0,
            last_hash=(records[-1].hash if records else GENESIS).hex(),
            heads_checked=heads,
            first_bad_seq=seq,
            reason=reason,
            warnings=tuple(warnings),
        )

    for index, record in enumerate(records):
        expected = index + 1
        if record.seq > expected:
            return bad(expected, f"record {expected} is missing (deleted)", len(records))
        if record.seq < expected:
            return bad(
                expected,
                f"record {expected} is a duplicate of seq {record.seq} (inserted)",
                len(records),
            )
        if record.prev_hash != prev:
            origin = by_hash.get(record.prev_hash)
            if origin is not None and origin != expected - 1:
                reason = f"record {expected} follows record {origin} in the chain (reordered)"
            else:
                reason = (
                    f"record {expected} does not chain to record {expected - 1} "
                    "(a record was inserted, deleted or reordered)"
                )
            return bad(expected, reason, len(records))
        try:
            preimage = record_preimage(
                prev_hash=record.prev_hash,
                party=party,
                seq=record.seq,
                time=record.time,
                actor=record.actor,
                event=record.event,
                details=record.details,
                payload_hash=record.payload_hash,
            )
        except GovernanceError:
            return bad(
                expected, f"record {expected} has undecodable details (edited)", len(records)
            )
        if chain_hash(preimage) != record.hash:
            return bad(
                expected,
                f"record {expected} content does not match its hash (edited)",
                len(records),
            )
        try:
            verify_key.verify(record.signature, preimage)
        except CryptoError:
            stored = _stored_key(stored_key)
            if (
                stored is not None
                and stored.to_base64() != verify_key.to_base64()
                and _verifies_any([record], party=party, verify_key=stored)
                and not _verifies_any(records, party=party, verify_key=verify_key)
            ):
                # Not one record was signed with the key given, and the key the log names does
                # verify them: most likely the wrong --key (or the whole log re-signed).
                return replace(
                    bad(
                        expected,
                        f"the key given does not match: it verifies none of the "
                        f"{len(records)} records, signed with the key the log names "
                        f"({stored.fingerprint[:16]}, given {verify_key.fingerprint[:16]}); a wrong key "
                        "file, or the whole log re-signed with another key",
                        len(records),
                    ),
                    key_mismatch=True,
                )
            return bad(
                expected,
                f"record {expected} signature does not verify (rewritten or forged)",
                len(records),
            )
        prev = record.hash

    if undecodable:
        seq = len(records) + 1
        return bad(seq, f"record {seq} cannot be decoded (edited)", len(rows))
    heads = 0
    last_seq = records[-1].seq if records else 0
    for head in peer_heads:
        if head.party != party:
            continue
        heads += 1
        try:
            head.verify(verify_key)
        except AuditError as exc:
            return bad(head.seq, f"signed head for job {head.job_id}: {exc}", len(records), heads)
        if head.seq > last_seq:
            return bad(
                last_seq + 1,
                f"log truncated: it ends at record {last_seq} but the signed head for job "
                f"{head.job_id} is at record {head.seq}",
                len(records),
                heads,
            )
        if head.seq > 0 and records[head.seq - 1].hash.hex() != head.hash:
            return bad(
                head.seq,
                f"record {head.seq} differs from the signed head for job {head.job_id} (rewritten)",
                len(records),
                heads,
            )
    return VerifyResult(
        ok=True,
        party=party,
        records=len(records),
        last_seq=last_seq,
        last_hash=prev.hex(),
        heads_checked=heads,
        warnings=tuple(warnings),
    )


def write_heads_file(path: str | Path, heads: Iterable[SignedHead]) -> None:
    """Write signed heads as a JSON list, atomically."""
    data = json.dumps([h.to_dict() for h in heads], indent=2, sort_keys=True) + "\n"
    atomic_write(path, data.encode("utf-8"), mode=0o644)


_SQLITE_MAGIC = b"SQLite format 3\x00"


def read_stored_heads(path: str | Path) -> list[SignedHead]:
    """The signed heads a party's audit log (``audit.db``) holds from its peers, oldest first."""
    try:
        db = _connect(Path(path))
        try:
            rows = db.execute("SELECT head FROM heads ORDER BY id").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path} is not a readable audit log ({exc})") from None
    try:
        return [SignedHead.from_dict(json.loads(row[0])) for row in rows]
    except ValueError:
        raise AuditError(f"{path} holds a head that is not JSON") from None


def load_heads_file(path: str | Path) -> list[SignedHead]:
    """Read a heads file written by :func:`write_heads_file` (``vfl audit heads``), or take the
    heads a peer's audit log holds when ``path`` is that SQLite file (its ``audit.db``)."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC:
                return read_stored_heads(path)
    except OSError as exc:
        raise AuditError(f"cannot read heads file {path}: {exc}") from None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditError(f"cannot read heads file {path}: {exc}") from None
    if not isinstance(data, list):
        raise AuditError(f"heads file {path} must hold a JSON list")
    return [SignedHead.from_dict(item) for item in data]
