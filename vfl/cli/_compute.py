"""The party-local ``--compute {local,ray} --ray-address ADDR`` options of run, psi and serve.

The compute backend is this party's own choice (it is not part of the job file, nor of the job
digest the parties compare): the same job gives the same result on either backend.
"""

from __future__ import annotations

import argparse
from typing import Any

from crypto.compute import BACKENDS, ComputeBackend, ComputeError, make_backend

__all__ = ["add_compute_arguments", "backend_from_args"]


def add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--compute`` and ``--ray-address`` to ``parser``."""
    parser.add_argument(
        "--compute",
        choices=BACKENDS,
        default="local",
        help="where this party's heavy loops run: local processes (default) or its Ray cluster",
    )
    parser.add_argument(
        "--ray-address",
        metavar="HOST:PORT",
        help="head node of this party's own Ray cluster (with --compute ray; default: "
        "RAY_ADDRESS or the local head)",
    )


def backend_from_args(args: argparse.Namespace, *, workers: int | None = None) -> ComputeBackend:
    """The backend the options name; a Ray backend is connected now, before any data moves."""
    from vfl.errors import ConfigError

    address: Any = getattr(args, "ray_address", None)
    if args.compute != "ray" and address is not None:
        raise ConfigError("--ray-address needs --compute ray")
    backend = make_backend(args.compute, address=address, workers=workers)
    if args.compute == "ray":
        try:
            backend.workers  # noqa: B018 - connects to the cluster: fail before PSI, not in it
        except ComputeError as exc:
            raise ConfigError(str(exc)) from None
    return backend
