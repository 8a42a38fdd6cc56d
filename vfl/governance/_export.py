"""Audit reports for a date range: JSON (sections) or CSV (one row per record), written atomically.

The JSON report holds the verification result, and the records of the range split into
``lineage`` (job, data, hyperparameters, rounds, models), ``privacy`` (crypto scheme and key
size, PSI sizes, DP parameters, epsilon spent) and ``integrity`` (participants, peer heads,
retention, alerts) sections (:data:`vfl.governance.CATEGORIES`), and ``peer_heads``: the signed
chain heads this party holds from its peers, each with whether its signature verifies.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from crypto.keys import VerifyKey
from vfl._atomic import atomic_write
from vfl.governance._audit import records_query, row_to_record
from vfl.governance._canonical import canonical_json, format_time
from vfl.governance._errors import AuditError
from vfl.governance._events import CATEGORIES, category_of
from vfl.governance._records import AuditRecord, SignedHead
from vfl.governance._verify import read_stored_heads, verify

__all__ = ["ExportFormat", "export_report", "build_report"]

_CSV_FIELDS = ("seq", "time", "actor", "event", "category", "details", "payload_hash", "hash")


class ExportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"


def _read_records(path: Path, since: datetime | None, until: datetime | None) -> list[AuditRecord]:
    query, args = records_query(since=since, until=until)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute(query + " ORDER BY seq", args).fetchall()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise AuditError(f"{path} is not a readable audit log ({exc})") from None
    return [row_to_record(row) for row in rows]


def _peer_heads(path: Path) -> list[dict[str, Any]]:
    """The peers' signed heads this log holds, each with whether its signature verifies."""
    out = []
    for head in read_stored_heads(path):
        try:
            head.verify()
            valid = True
        except AuditError:
            valid = False
        out.append({**head.to_dict(), "signature_valid": valid})
    return out


def build_report(
    path: str | Path,
    *,
    verify_key: VerifyKey,
    peer_heads: tuple[SignedHead, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The JSON report as a dict (see the module docstring)."""
    path = Path(path)
    result = verify(path, verify_key=verify_key, peer_heads=peer_heads)
    records = _read_records(path, since, until)
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in CATEGORIES}
    sections["other"] = []
    for record in records:
        sections[category_of(record.event)].append(record.to_dict())
    return {
        "party": result.party,
        "range": {
            "since": None if since is None else format_time(since),
            "until": None if until is None else format_time(until),
        },
        "verification": result.to_dict(),
        "records": len(records),
        "peer_heads": _peer_heads(path),
        **sections,
    }


def export_report(
    path: str | Path,
    *,
    out: str | Path,
    format: ExportFormat | str,
    verify_key: VerifyKey,
    peer_heads: tuple[SignedHead, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    """Write the report to ``out`` atomically (temp file + ``os.replace``); return the JSON report."""
    try:
        kind = ExportFormat(format)
    except ValueError:
        raise AuditError(f"unknown export format {format!r} (json or csv)") from None
    report = build_report(
        path, verify_key=verify_key, peer_heads=peer_heads, since=since, until=until
    )
    if kind is ExportFormat.JSON:
        data = (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8")
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for record in _read_records(Path(path), since, until):
            writer.writerow(
                {
                    "seq": record.seq,
                    "time": record.time,
                    "actor": record.actor,
                    "event": record.event,
                    "category": category_of(record.event),
                    "details": canonical_json(dict(record.details)).decode("utf-8"),
                    "payload_hash": record.payload_hash or "",
                    "hash": record.hash.hex(),
                }
            )
        data = buffer.getvalue().encode("utf-8")
    atomic_write(out, data)
    return report
