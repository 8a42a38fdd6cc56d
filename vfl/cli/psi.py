"""``vfl psi``: align this party's CSV with the peers' by private set intersection.

    vfl psi --config federation.toml --party bank --input bank.csv --id-column id \\
            --output bank_aligned.csv [--reveal all|NAME|size] [--json] \\
            [--compute ray --ray-address HEAD:PORT]

Every party runs the same command (same ``--job-id``, ``--reveal`` and party set) against its own
CSV. The output holds this party's rows whose id is in the intersection, in the same order at
every party; it is written to a temporary file and moved into place only when complete, so a
failed run leaves no half-written output. With ``--reveal size`` (or at a party that is not the
named receiver) no file is written and the size (if learnt) is printed. ``--compute ray`` runs
this party's blinding batches on its own Ray cluster (docs/deploy.md); the JSON's ``"compute"``
says which backend ran how many tasks on how many nodes.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from vfl._atomic import atomic_path
from vfl.cli._compute import add_compute_arguments, backend_from_args

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("psi", help="align a CSV with the peers' by private set intersection")
    parser.add_argument("--config", required=True, help="federation.toml")
    parser.add_argument("--party", required=True, help="this party's name in the federation")
    parser.add_argument("--input", required=True, help="this party's CSV")
    parser.add_argument("--id-column", required=True, help="column holding the ids")
    parser.add_argument("--output", help="aligned CSV to write (needed unless --reveal size)")
    parser.add_argument(
        "--reveal", default="all", help="all (default), the name of the only receiver, or size"
    )
    parser.add_argument(
        "--peers", help="comma-separated peers taking part (default: every party in the config)"
    )
    parser.add_argument("--leader", help="leader for three or more parties (default: first name)")
    parser.add_argument(
        "--duplicates",
        choices=("error", "first"),
        default="error",
        help="duplicate ids: fail (default) or keep each id's first row",
    )
    parser.add_argument("--job-id", default="vfl-psi", help="job id shared by all parties")
    parser.add_argument("--timeout", type=float, help="seconds per wait (default grows with input)")
    parser.add_argument("--workers", type=int, help="worker processes (default: every core)")
    parser.add_argument(
        "--max-peer-ids",
        type=int,
        default=200_000_000,
        help="refuse a peer announcing more ids than this (default 200M)",
    )
    add_compute_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(func=_run)


def _read_csv(path: str, id_column: str) -> Any:
    import pandas as pd

    from psi.errors import PSIUsageError

    try:
        # The id column as strings: a numeric column would hold ids above 2^53 as colliding floats.
        df = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError:
        raise PSIUsageError(f"input file {path} not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PSIUsageError(f"cannot read {path} as CSV: {first}") from None
    if id_column not in df.columns:
        raise PSIUsageError(f"id column {id_column!r} not in {path}; columns: {list(df.columns)}")
    return df


def _write_atomically(df: Any, path: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        df.to_csv(fh, index=False)


def _run(args: argparse.Namespace) -> int:
    import psi
    from protocols.config import load_federation
    from protocols.grpc import PartyNode
    from psi.errors import PSIUsageError
    from vfl._progress import count_bar

    if args.reveal != "size" and not args.output:
        raise PSIUsageError("--output is required unless --reveal size")
    if args.output and not Path(args.output).resolve().parent.is_dir():
        raise PSIUsageError(f"output directory of {args.output} does not exist")
    df = _read_csv(args.input, args.id_column)
    # Check the ids before any network traffic, so bad input fails fast and alone; the PSI
    # then runs on these normalised ids (no second pass).
    ids = psi.normalise_ids(df[args.id_column], column=args.id_column, duplicates=args.duplicates)
    config = load_federation(args.config)
    peers = None if not args.peers else [p.strip() for p in args.peers.split(",") if p.strip()]
    backend = backend_from_args(args, workers=args.workers)
    start = time.perf_counter()
    node = PartyNode(config, args.party).start()
    try:
        bar = count_bar("psi", unit="pt", enabled=not args.json)
        window = {} if args.timeout is None else {"send_timeout": args.timeout}  # connect window
        with bar as update, closing(node.channel(args.job_id, **window)) as channel:
            common: dict[str, Any] = {
                "channel": channel,
                "peers": peers,
                "reveal": args.reveal,
                "leader": args.leader,
                "duplicates": args.duplicates,
                "timeout": args.timeout,
                "progress": update,
                "max_peer_ids": args.max_peer_ids,
                "compute": backend,
            }
            result = psi.intersect(ids, column=args.id_column, **common)
            aligned = None if result.rows is None else df.iloc[result.rows].reset_index(drop=True)
    finally:
        node.stop()
        backend.close()
    if aligned is not None:
        _write_atomically(aligned, args.output)
    summary = {
        "party": args.party,
        "reveal": result.reveal.wire,
        "intersection_size": result.size,
        "input_rows": result.n_input,
        "unique_ids": result.n_unique,
        "duplicates_dropped": result.n_duplicates_dropped,
        "output": None if aligned is None else str(args.output),
        "output_rows": None if aligned is None else len(aligned),
        "seconds": round(time.perf_counter() - start, 3),
        "compute": backend.stats().as_dict(),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        where = f" -> {args.output} ({len(aligned)} rows)" if aligned is not None else ""
        size = "not revealed to this party" if result.size is None else result.size
        print(f"{args.party}: intersection size {size}{where}")
    return 0
