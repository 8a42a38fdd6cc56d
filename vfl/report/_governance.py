"""What the party's audit log and model registry say about a run, read without changing them.

The audit log is opened read-only (SQLite ``mode=ro``) and checked with
:func:`vfl.governance.verify`: hash chain and Ed25519 signatures, under the key given by the
caller (pinned) or else the key stored in the log, which only proves internal consistency. The
registry is read through :class:`vfl.governance.ModelRegistry`. A missing or unreadable database
becomes a note in the report, never a failed report.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crypto.errors import CryptoError
from crypto.keys import VerifyKey
from vfl.governance import GovernanceError, ModelRegistry, SignedHead, verify
from vfl.report._lineage import LineageNode

__all__ = ["AuditSummary", "HeadRow", "Lineage", "read_audit", "read_lineage"]

_MAX_MODELS, _MAX_VERSIONS = 6, 14


@dataclass(frozen=True)
class HeadRow:
    """A peer's signed chain head held in this party's log."""

    party: str
    job_id: str
    seq: int
    hash: str
    time: str
    signature_ok: bool


@dataclass(frozen=True)
class AuditSummary:
    """The audit log in numbers; ``error`` is set (and the rest empty) when it cannot be read."""

    path: Path
    party: str = ""
    ok: bool | None = None
    reason: str | None = None
    records: int = 0
    key_pinned: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    job_counts: dict[str, int] = field(default_factory=dict)
    heads: tuple[HeadRow, ...] = ()
    error: str | None = None


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def read_audit(path: Path, *, job_id: str, verify_key: VerifyKey | None = None) -> AuditSummary:
    """Verify the log at ``path`` and count its records per event kind (all, and this job's)."""
    if not path.is_file():
        return AuditSummary(path=path, error=f"no audit log at {path}")
    try:
        db = _ro(path)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            rows = db.execute("SELECT event, details FROM records ORDER BY seq").fetchall()
            head_rows = db.execute("SELECT head FROM heads ORDER BY id").fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return AuditSummary(path=path, error=f"{path} is not a readable audit log ({exc})")
    counts: Counter[str] = Counter()
    job_counts: Counter[str] = Counter()
    for event, details in rows:
        counts[str(event)] += 1
        try:
            parsed = json.loads(details)
        except (TypeError, ValueError):
            continue
        if isinstance(parsed, dict) and parsed.get("job_id") == job_id:
            job_counts[str(event)] += 1
    heads = tuple(_head_row(text) for (text,) in head_rows)
    party = str(meta.get("party", ""))
    try:
        key = verify_key or VerifyKey.from_base64(str(meta.get("public_key", "")))
        result = verify(path, verify_key=key)
    except (GovernanceError, CryptoError, ValueError) as exc:
        return AuditSummary(
            path=path,
            party=party,
            records=len(rows),
            counts=dict(counts),
            job_counts=dict(job_counts),
            heads=heads,
            error=f"cannot verify the audit log: {str(exc).splitlines()[0]}",
        )
    return AuditSummary(
        path=path,
        party=party,
        ok=result.ok,
        reason=None if result.ok else f"record {result.first_bad_seq}: {result.reason}",
        records=result.records,
        key_pinned=verify_key is not None,
        counts=dict(counts),
        job_counts=dict(job_counts),
        heads=heads,
    )


def _head_row(text: str) -> HeadRow:
    try:
        head = SignedHead.from_dict(json.loads(text))
    except (GovernanceError, CryptoError, ValueError, TypeError, KeyError):
        return HeadRow("?", "?", 0, "", "", False)
    try:
        head.verify()
        ok = True
    except (GovernanceError, CryptoError):
        ok = False
    return HeadRow(head.party, head.job_id, head.seq, head.hash, head.time, ok)


@dataclass(frozen=True)
class Lineage:
    """Registry versions to draw and their stage history; ``error`` when unreadable."""

    path: Path
    nodes: tuple[LineageNode, ...] = ()
    history: tuple[dict[str, Any], ...] = ()
    omitted: int = 0
    error: str | None = None


def read_lineage(path: Path, *, job_id: str, touched: Iterable[tuple[str, str]] = ()) -> Lineage:
    """The versions of the models this run registered (else of every model), oldest first.

    ``touched`` lists ``(name, version)`` pairs the run's events name; a version whose metadata
    carries this ``job_id`` counts too.
    """
    if not path.is_file():
        return Lineage(path=path, error=f"no model registry at {path}")
    marked = set(touched)
    try:
        with ModelRegistry(path, party="") as registry:
            versions = registry.versions()
            mine = {
                (v.name, v.version)
                for v in versions
                if v.metadata.job_id == job_id or (v.name, v.version) in marked
            }
            names = sorted({name for name, _v in mine}) or sorted({v.name for v in versions})
            shown = names[:_MAX_MODELS]
            history = tuple(
                {"name": name, **row} for name in shown for row in registry.history(name)
            )
    except (sqlite3.DatabaseError, GovernanceError, ValueError, TypeError) as exc:
        return Lineage(path=path, error=f"cannot read the model registry: {exc}")
    nodes: list[LineageNode] = []
    omitted = sum(1 for v in versions if v.name not in shown)
    for name in shown:
        of_name = [v for v in versions if v.name == name]
        omitted += max(len(of_name) - _MAX_VERSIONS, 0)
        for v in of_name[-_MAX_VERSIONS:]:
            nodes.append(
                LineageNode(
                    name=v.name,
                    version=v.version,
                    stage=str(v.stage),
                    parent=v.parent,
                    job_id=v.metadata.job_id,
                    current=(v.name, v.version) in mine,
                )
            )
    return Lineage(path=path, nodes=tuple(nodes), history=history, omitted=omitted)
