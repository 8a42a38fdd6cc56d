"""``vfl demo``: run what the engine can do end to end today, on this machine, and say what is not
built yet. Every figure it prints is measured in this run; nothing is simulated or faked."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run the engine's end-to-end demo on this machine")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument(
        "--paillier-bits", type=int, default=2048, choices=(2048, 3072), help="Paillier key size"
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vfl.demo import run_demo

    result = run_demo(paillier_bits=args.paillier_bits, progress=not args.json)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_summary(result), file=sys.stdout)
    return 0 if result["ok"] else 1


def render_summary(result: dict[str, Any]) -> str:
    lines = ["", "vfl demo -- summary", "=" * 60]
    for phase in result["phases"]:
        status = "ok" if phase["ok"] else "FAILED"
        lines.append(f"[{status:>6}] {phase['name']}  ({phase['seconds']:.2f} s)")
        for key, value in phase["figures"].items():
            shown = f"{value:.6g}" if isinstance(value, float) else str(value)
            lines.append(f"           {key}: {shown}")
    if result["not_built"]:
        lines.append("")
        lines.append("Not built yet (see README's feature table):")
        lines.extend(f"  - {item}" for item in result["not_built"])
    return "\n".join(lines)
