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
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items() if v is not None)
    return str(value)


def _crypto(crypto: dict[str, Any]) -> str:
    scheme = str(crypto.get("scheme", "?"))
    if scheme == "ckks":  # a named preset of crypto.ckks: show its ring degree N
        from crypto.ckks import PRESETS

        preset = PRESETS.get(str(crypto.get("ckks_preset") or crypto.get("preset")))
        return f"ckks N={preset.poly_modulus_degree}" if preset else "ckks"
    size = crypto.get("key_bits")
    return f"{scheme} {size}" if size else scheme


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f} MB" if isinstance(n, int | float) else "?"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def render_summary(result: dict[str, Any]) -> str:
    """The demo's closing summary: phases, then one table row per model, then where things are."""
    lines = ["", "vfl demo: summary", "=" * 72]
    jobs = []
    for phase in result["phases"]:
        status = "ok" if phase["ok"] else "FAILED"
        lines.append(f"[{status}] {phase['name']}  ({phase['seconds']:.1f} s)")
        figures = phase["figures"]
        if "test_auc" in figures:
            jobs.append((phase, figures))
            continue
        lines.extend(f"    {key}: {_fmt(value)}" for key, value in figures.items())
    if jobs:
        rows = [["model", "test AUC", "centralised", "diff", "crypto", "intersection",
                 "bytes bank->retailer", "retailer->bank", "PSI s", "train s", "eval s"]]  # fmt: skip
        for phase, f in jobs:
            sec = f.get("seconds", {})
            rows.append([
                "hetero LR" if "hetero" in phase["name"] else "split NN",
                f"{f['test_auc']:.4f}", f"{f['centralised_reference_auc']:.4f}",
                f"{f['test_auc'] - f['centralised_reference_auc']:+.4f}", _crypto(f["crypto"]),
                str(f["intersection_size"]), _mb(f["bytes_sent"].get("bank")),
                _mb(f["bytes_sent"].get("retailer")),
                *(f"{sec[k]:.1f}" if k in sec else "-" for k in ("psi", "train", "evaluate")),
            ])  # fmt: skip
        lines += ["", *_table(rows)]
        for phase, f in jobs:
            for key in ("privacy",):
                if key in f:
                    lines.append(f"    {phase['name'].split(':')[0]} {key}: {_fmt(f[key])}")
    lines.append("")
    lines.append(f"run directory: {result['run_dir']}")
    for job, path in (result.get("reports") or {}).items():
        lines.append(f"HTML report ({job}): {path}")
    if result["not_built"]:
        lines.append("not built yet (see README's feature table):")
        lines.extend(f"  - {item}" for item in result["not_built"])
    return "\n".join(lines)
