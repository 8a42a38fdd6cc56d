"""``vfl bench NAME``: run one benchmark and print its result (JSON with ``--json``).

Every benchmark measures the engine next to a named baseline in the same run and reports the
ratio; see ``benchmarks/README.md``. Benchmarks live in :mod:`vfl.bench`, one module each, with
``add_arguments(parser)`` and ``run(args) -> dict``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
from typing import Any

from vfl.bench import BENCHMARKS


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="run a benchmark against its baseline, print JSON")
    bench_sub = parser.add_subparsers(dest="benchmark", metavar="NAME")
    bench_sub.required = True
    for name, (module_name, help_text) in BENCHMARKS.items():
        p = bench_sub.add_parser(name, help=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--out", metavar="FILE", help="also write the JSON result to FILE")
        p.set_defaults(func=_run, bench_module=module_name)
        importlib.import_module(module_name).add_arguments(p)


def _write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bench-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    module = importlib.import_module(args.bench_module)
    result: dict[str, Any] = module.run(args)
    text = json.dumps(result, indent=2, sort_keys=False)
    if args.out:
        _write_atomically(args.out, text + "\n")
    print(text if args.json else _human(result), file=sys.stdout)
    return 0
