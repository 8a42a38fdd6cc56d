"""``vfl audit verify|export|heads``: check, report on and share an audit log's chain.

``verify`` exits 0 when the chain, signatures and the given peers' signed heads check out, and 1
with one line naming the first bad record otherwise. ``--heads`` takes a heads file or a peer's
``audit.db`` (after a job, each party's log holds the other parties' signed heads), so
``vfl audit verify bank/audit.db --heads retailer/audit.db`` detects a truncated bank log. Pin the party's public key with ``--key``
(PEM file); without it the key stored in the log is used, which only proves internal consistency
(a warning says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("audit", help="verify, export and share audit logs")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION")
    actions.required = True

    verify = actions.add_parser("verify", help="check an audit log's hash chain and signatures")
    _common(verify)
    verify.set_defaults(func=_verify)

    export = actions.add_parser("export", help="write a JSON or CSV audit report")
    _common(export)
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", type=Path, required=True, help="report file to write")
    export.add_argument("--since", help="first date/time included (ISO 8601, UTC if naive)")
    export.add_argument("--until", help="first date/time excluded (ISO 8601, UTC if naive)")
    export.set_defaults(func=_export)

    heads = actions.add_parser("heads", help="write the signed heads this log holds from peers")
    heads.add_argument("path", type=Path, help="the audit log (SQLite file)")
    heads.add_argument("--out", type=Path, required=True, help="heads file (JSON) to write")
    heads.add_argument("--party", help="only the heads of this peer")
    heads.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    heads.set_defaults(func=_heads)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="the audit log (SQLite file)")
    parser.add_argument(
        "--heads",
        type=Path,
        action="append",
        default=[],
        help="the heads a peer holds: a heads file (`vfl audit heads` at the peer) or the "
        "peer's audit.db itself; repeatable",
    )
    parser.add_argument("--key", type=Path, help="the party's audit public key (PEM) to pin")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _load(args: argparse.Namespace) -> tuple[Any, tuple[Any, ...]]:
    from crypto.keys import VerifyKey
    from vfl.governance import load_heads_file
    from vfl.governance._verify import read_log_identity

    if args.key is not None:
        key = VerifyKey.load(args.key)
    else:
        _party, stored = read_log_identity(args.path)
        key = VerifyKey.from_base64(stored)
        if not args.json:
            print(
                "vfl: warning: no --key given; trusting the public key stored in the log",
                file=sys.stderr,
            )
    heads = tuple(head for path in args.heads for head in load_heads_file(path))
    return key, heads


def _verify(args: argparse.Namespace) -> int:
    from vfl.governance import verify

    key, heads = _load(args)
    result = verify(args.path, verify_key=key, peer_heads=heads)
    if args.json:
        print(json.dumps({**result.to_dict(), "key_pinned": args.key is not None}, indent=2))
    elif result.ok:
        print(
            f"ok: {result.party}'s audit log has {result.records} valid records, "
            f"{result.heads_checked} peer heads checked"
        )
    if not result.ok and result.key_mismatch:
        print(f"vfl: audit log {args.path}: --key {args.key}: {result.reason}", file=sys.stderr)
        return 1
    if not result.ok:
        print(
            f"vfl: audit log {args.path} tampered: record {result.first_bad_seq}: {result.reason}",
            file=sys.stderr,
        )
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    from vfl.governance import export_report
    from vfl.governance._canonical import parse_time

    key, heads = _load(args)
    report = export_report(
        args.path,
        out=args.out,
        format=args.format,
        verify_key=key,
        peer_heads=heads,
        since=None if args.since is None else parse_time(args.since),
        until=None if args.until is None else parse_time(args.until),
    )
    summary = {
        "out": str(args.out),
        "format": args.format,
        "records": report["records"],
        "verification": report["verification"],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {args.format} report of {report['records']} records to {args.out}")
    return 0 if report["verification"]["ok"] else 1


def _heads(args: argparse.Namespace) -> int:
    from vfl.governance import write_heads_file
    from vfl.governance._verify import read_stored_heads

    heads = [h for h in read_stored_heads(args.path) if args.party is None or h.party == args.party]
    write_heads_file(args.out, heads)
    if args.json:
        print(json.dumps({"out": str(args.out), "heads": len(heads)}))
    else:
        print(f"wrote {len(heads)} signed heads to {args.out}")
    return 0
