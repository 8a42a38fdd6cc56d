"""``vfl run JOB.toml --config federation.toml --party NAME [--json]``: one party's side of a job.

Runs this party's gRPC node (mutual TLS, signed envelopes) for the job's session, then
:func:`vfl.jobs.run_job`: align by PSI -> train -> evaluate -> register the model. With ``--json``
prints one JSON object (DESIGN.md "The job file"). Job types: ``psi``, ``hetero_lr``,
``split_nn``, ``fedavg``, ``secureboost``.

The party's signing key from ``federation.toml`` also signs its audit log (``WORK/audit.db``) and
its chain heads, and the peers' heads are pinned to their public keys there, so
``vfl audit verify WORK/audit.db --key PARTY/signing.pub.pem`` checks the log against the
federation's key. Live progress is in ``WORK/runs/JOB_ID/PARTY/status.json`` and ``events.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from vfl.cli._compute import add_compute_arguments, backend_from_args

__all__ = ["main", "register"]

logger = logging.getLogger("vfl.cli.run")


def register(sub: Any) -> None:
    from vfl.dashboard import add_dashboard_arguments

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
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for a peer: to reach it, and for any one message from it",
    )
    parser.add_argument(
        "--insecure-small-keys",
        action="store_true",
        help="allow Paillier keys below 2048 bits (tests only)",
    )
    parser.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help="listen address of this party's node (default: its address in FEDERATION.toml; "
        "e.g. 0.0.0.0:50051 behind NAT or in a container)",
    )
    add_dashboard_arguments(parser)
    add_compute_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from crypto import compute
    from protocols.config import load_federation
    from protocols.grpc import PartyNode
    from vfl._liveness import mark_dead_runs
    from vfl.errors import ConfigError
    from vfl.jobs import identity_from_federation, jsonable, load_job, run_job

    job = load_job(args.job, allow_small_keys=args.insecure_small_keys)
    job.party(args.party)
    config = load_federation(args.config)
    unknown = sorted(set(job.parties) - set(config.parties))
    if unknown:
        raise ConfigError(f"job parties missing from {args.config}: {', '.join(unknown)}")
    identity = identity_from_federation(config, args.party)
    mark_dead_runs(args.work_dir)  # a run whose process died is failed, never left "train"
    # This party's own choice, outside the job digest: PSI and Paillier batches run on it.
    backend = backend_from_args(args)
    previous = compute.configure(backend)
    node = PartyNode(config, args.party, bind=args.bind).start()
    dashboard = None
    try:
        if args.dashboard:
            from vfl.dashboard import start_dashboard

            dashboard, _ = start_dashboard(
                bind=args.dashboard,
                work_dir=args.work_dir,
                token_file=args.dashboard_token_file,
                node=node,
                party=args.party,
            )
            # The URL carries the token: stderr, like the progress lines, never the JSON on stdout.
            print(f"dashboard: {dashboard.login_url}", file=sys.stderr, flush=True)
        # --timeout bounds every wait: a peer message, and reaching a peer (the connect window).
        channel = node.channel(job.job.id, send_timeout=args.timeout, default_timeout=args.timeout)
        try:
            result = run_job(
                job,
                party=args.party,
                channel=channel,
                work_dir=Path(args.work_dir),
                progress=not args.json,
                identity=identity,
            )
        finally:
            channel.close()
    finally:
        if dashboard is not None:
            dashboard.stop()
        node.stop()
        compute.configure(previous)
        backend.close()
    if args.json:
        print(json.dumps(jsonable(result)))  # the same object as result.json
    else:
        metrics = ", ".join(
            f"{k}={v:.4f}"
            for k, v in result.get("metrics", {}).items()
            if isinstance(v, int | float)
        )
        model = result.get("model")
        registered = (
            f"; registered {model['name']} {model['version']} ({model['stage']})" if model else ""
        )
        psi = result.get("psi")
        rows = f"{psi['intersection_size']} aligned rows; " if isinstance(psi, dict) else ""
        print(
            f"{result['job_id']} {result['party']}: {rows}{metrics or 'no metrics at this party'}{registered}; run dir {result['run_dir']}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m vfl.cli.run ...``: this command alone (the same as ``vfl run ...``)."""
    from vfl.cli import main as vfl_main

    return vfl_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
