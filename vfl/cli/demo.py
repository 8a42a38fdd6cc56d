"""``vfl demo``: the retailer + bank federation end to end on this machine (see :mod:`vfl.demo`).

Every figure it prints is measured in this run; nothing is simulated or faked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the retailer + bank demo end to end on this machine")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--paillier-bits", type=int, default=2048, choices=(2048, 3072), help="Paillier key size"
    )
    parser.add_argument(
        "--work-dir", default="vfl-demo", help="where the run directory is made (default vfl-demo)"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vfl.demo import run_demo

    result = run_demo(
        paillier_bits=args.paillier_bits, work_dir=args.work_dir, progress=not args.json
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_summary(result), file=sys.stdout)
    if not result["ok"]:
        failed = next((p for p in result["phases"] if not p["ok"]), None)
        reason = failed["figures"]["error"] if failed else "not every phase ran"
        print(f"vfl: error: demo failed: {reason}", file=sys.stderr)
        return 1
    return 0


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    return str(value)


def render_summary(result: dict[str, Any]) -> str:
    lines = ["", "vfl demo: summary", "=" * 72]
    for phase in result["phases"]:
        status = "ok" if phase["ok"] else "FAILED"
        lines.append(f"[{status}] {phase['name']}  ({phase['seconds']:.1f} s)")
        figures = phase["figures"]
        if "test_auc" in figures:
            lines.append(
                f"    test AUC {figures['test_auc']:.4f}   centralised reference "
                f"{figures['centralised_reference_auc']:.4f}   "
                f"difference {figures['test_auc'] - figures['centralised_reference_auc']:+.4f}"
            )
            lines.append(f"    intersection {figures['intersection_size']} customers; "
                         f"train {figures['train_rows']}, test {figures['test_rows']}")  # fmt: skip
            for key in ("crypto", "bytes_sent", "seconds", "privacy"):
                if key in figures:
                    lines.append(f"    {key}: {_fmt(figures[key])}")
        else:
            lines.extend(f"    {key}: {_fmt(value)}" for key, value in figures.items())
    lines.append("")
    lines.append(f"run directory: {result['run_dir']}")
    if result["not_built"]:
        lines.append("not built yet (see README's feature table):")
        lines.extend(f"  - {item}" for item in result["not_built"])
    return "\n".join(lines)
