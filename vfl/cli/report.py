"""``vfl report RUN_DIR --out report.html``: the HTML report of one run, with plots.

The work directory (for ``audit.db`` and ``registry.db``) is ``RUN_DIR/../../..`` when it holds
one of them, or ``--work-dir``. ``--json`` prints ``{"out": ..., "plots": [...]}``. Exit 0 when
written, 2 with one line on stderr for a run directory that cannot be reported on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("report", help="HTML report with plots for a run")
    parser.add_argument("run_dir", type=Path, help="the run directory (WORK_DIR/runs/JOB/PARTY)")
    parser.add_argument("--out", type=Path, required=True, help="HTML file to write")
    parser.add_argument(
        "--work-dir", type=Path, help="the party's work dir (default: RUN_DIR/../../..)"
    )
    parser.add_argument(
        "--audit-key", type=Path, help="the party's audit public key (PEM) to pin for the check"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from crypto.keys import VerifyKey
    from vfl.report import write_report

    key = None if args.audit_key is None else VerifyKey.load(args.audit_key)
    report = write_report(args.run_dir, args.out, work_dir=args.work_dir, audit_key=key)
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(args.out),
                    "plots": list(report.plots),
                    "work_dir": None if report.work_dir is None else str(report.work_dir),
                }
            )
        )
    else:
        print(f"wrote {args.out} ({len(report.plots)} plots)")
    return 0
