"""``vfl bench NAME``: run one benchmark and print its result (JSON with ``--json``).

Every benchmark measures the engine next to a named baseline in the same run and reports the
ratio; see ``benchmarks/README.md``. Benchmarks live in :mod:`vfl.bench`, one module each, with
``add_arguments(parser)`` and ``run(args) -> dict``. A benchmark module is imported only when it
is the one asked for, so that heavy imports never slow down the other commands.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

from vfl._atomic import atomic_write
from vfl.bench import BENCHMARKS
from vfl.cli import RawDescriptionFormatter, VflArgumentParser


def register(sub: Any) -> None:
    listing = "\n".join(f"  {name:<12} {help_text}" for name, (_m, help_text) in BENCHMARKS.items())
    parser = sub.add_parser(
        "bench",
        help="run a benchmark against its baseline, print JSON",
        description="Run a benchmark. `vfl bench NAME --help` shows its options.\n\n" + listing,
        formatter_class=RawDescriptionFormatter,
    )
    parser.add_argument("benchmark", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(func=_run)


def _bench_parser(name: str) -> tuple[argparse.ArgumentParser, Any]:
    module_name, help_text = BENCHMARKS[name]
    module = importlib.import_module(module_name)
    parser = VflArgumentParser(prog=f"vfl bench {name}", description=help_text)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
    module.add_arguments(parser)
    return parser, module


def _write_atomically(path: str, text: str) -> None:
    atomic_write(os.path.abspath(path), text)


def _human(result: dict[str, Any], indent: int = 0) -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(_human(value, indent + 2))
        elif isinstance(value, float):
            lines.append(" " * indent + f"{key}: {value:.6g}")
        else:
            lines.append(" " * indent + f"{key}: {value}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    parser, module = _bench_parser(args.benchmark)
    bench_args = parser.parse_args(args.bench_args)
    result: dict[str, Any] = module.run(bench_args)
    text = json.dumps(result, indent=2, sort_keys=False)
    if bench_args.out:
        _write_atomically(bench_args.out, text + "\n")
    print(text if bench_args.json else _human(result), file=sys.stdout)
    return 0
