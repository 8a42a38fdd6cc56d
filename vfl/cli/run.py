"""``vfl run JOB.toml --config federation.toml --party NAME [--json]``: one party's side of a job.

Runs this party's gRPC node (mutual TLS, signed envelopes) for the job's session, then
:func:`vfl.jobs.run_job`: align by PSI -> train -> evaluate -> save the model. With ``--json``
prints one JSON object (DESIGN.md "The job file"). Job types: ``psi``, ``hetero_lr``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "register"]

logger = logging.getLogger("vfl.cli.run")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run", help="run this party's side of a job file: align -> train -> evaluate"
    )
    parser.add_argument(
        "job", metavar="JOB.toml", help="the job file (every party runs the same file)"
    )
    parser.add_argument(
        "--config", required=True, metavar="FEDERATION.toml", help="the federation file"
    )
    parser.add_argument("--party", required=True, help="this party's name in both files")
    parser.add_argument(
        "--work-dir", default=".", help="this party's work directory (runs/JOB_ID/PARTY inside)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for any one peer message"
    )
    parser.add_argument(
        "--insecure-small-keys",
        action="store_true",
        help="allow Paillier keys below 2048 bits (tests only)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from protocols.config import load_federation
    from protocols.grpc import PartyNode
    from vfl.errors import ConfigError
    from vfl.jobs import load_job, run_job

    job = load_job(args.job, allow_small_keys=args.insecure_small_keys)
    job.party(args.party)
    config = load_federation(args.config)
    unknown = sorted(set(job.parties) - set(config.parties))
    if unknown:
        raise ConfigError(f"job parties missing from {args.config}: {', '.join(unknown)}")
    node = PartyNode(config, args.party).start()
    try:
        channel = node.channel(job.job.id, default_timeout=args.timeout)
        try:
            result = run_job(
                job,
                party=args.party,
                channel=channel,
                work_dir=Path(args.work_dir),
                progress=not args.json,
            )
        finally:
            channel.close()
    finally:
        node.stop()
    if args.json:
        print(json.dumps(result, default=_jsonable))
    else:
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in result["metrics"].items())
        print(
            f"{result['job_id']} {result['party']}: {result['psi']['intersection_size']} aligned rows; {metrics or 'no metrics at this party'}; run dir {result['run_dir']}"
        )
    return 0


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    """``python -m vfl.cli.run ...``: this command alone (the same as ``vfl run ...``)."""
    from vfl.cli import main as vfl_main

    return vfl_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
