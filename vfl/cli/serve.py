"""``vfl serve --config F --party NAME``: run one party's node until SIGTERM (or Ctrl-C).

The node listens with mutual TLS 1.3 against the federation CA and serves the party service and
the standard gRPC health service. With ``--json`` one JSON object describing the running node
is printed on stdout as soon as it serves (so scripts can wait for it).

``--dashboard HOST:PORT`` also serves the read-only dashboard and Prometheus ``/metrics`` of the
party's ``--work-dir`` (:mod:`vfl.dashboard`); its token is read from ``--dashboard-token-file``
or written to ``WORK_DIR/dashboard.token`` (0600), and the printed URL carries it.

``--compute ray --ray-address HEAD:PORT`` connects this node's process to the party's own Ray
cluster before it serves (a wrong address fails here, not in a job) and installs it as the
process's compute backend (:func:`crypto.compute.configure`) for the jobs run in this process.
"""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import argparse
import json
import logging
import signal
import threading
from types import FrameType
from typing import Any

import protocols.grpc
from crypto import compute
from vfl._liveness import mark_dead_runs
from vfl.cli._compute import add_compute_arguments, backend_from_args
from vfl.dashboard import add_dashboard_arguments, start_dashboard
from vfl.errors import ConfigError

__all__ = ["register"]

_log = logging.getLogger("vfl.serve")


def register(sub: Any) -> None:
    parser = sub.add_parser("serve", help="run one party's node (gRPC, mutual TLS, health)")
    parser.add_argument("--config", required=True, metavar="FILE", help="federation.toml")
    parser.add_argument("--party", required=True, metavar="NAME", help="this party's name")
    parser.add_argument(
        "--bind", metavar="HOST:PORT", help="listen address (default: the party's address)"
    )
    parser.add_argument(
        "--heartbeat", type=float, default=30.0, metavar="SECONDS", help="heartbeat interval"
    )
    parser.add_argument("--grace", type=float, default=5.0, help="seconds to finish calls on stop")
    parser.add_argument(
        "--work-dir", default=".", help="this party's work directory (the dashboard reads its runs)"
    )
    add_dashboard_arguments(parser)
    add_compute_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from protocols.config import load_federation
    from protocols.errors import ConfigError as ProtocolConfigError

    if args.heartbeat <= 0:
        raise ConfigError("--heartbeat must be positive")
    backend = backend_from_args(args)
    try:
        config = load_federation(args.config)
        node = protocols.grpc.PartyNode(
            config, args.party, bind=args.bind, heartbeat_interval=args.heartbeat
        )
        node.start()
    except ProtocolConfigError as exc:
        raise ConfigError(str(exc)) from exc
    mark_dead_runs(args.work_dir)  # a run whose process died is failed, never left "train"
    dashboard = None
    if args.dashboard is not None:
        try:
            dashboard, token_file = start_dashboard(
                bind=args.dashboard,
                work_dir=args.work_dir,
                token_file=args.dashboard_token_file,
                node=node,
            )
        except BaseException:
            node.stop(grace=0)
            raise
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    previous_backend = compute.configure(backend)
    info = {
        "party": args.party,
        "address": args.bind or config.party(args.party).address,
        "port": node.port,
        "status": "serving",
        "health_service": "grpc.health.v1.Health",
        "compute": {"backend": backend.name, "workers": backend.workers},
    }
    if dashboard is not None:
        info["dashboard_url"] = dashboard.login_url
        info["dashboard_token_file"] = str(token_file)
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print(
            f"{args.party} serving on port {node.port} (mutual TLS 1.3); SIGTERM stops", flush=True
        )
        if dashboard is not None:
            print(f"dashboard: {dashboard.login_url}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        _log.info("stopping node %s", args.party)
        if dashboard is not None:
            dashboard.stop()
        node.stop(grace=args.grace)
        compute.configure(previous_backend)
        backend.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
