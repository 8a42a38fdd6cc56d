"""Horizontal FL: three banks with the same columns but different customers, one aggregator.

Each client trains a logistic regression on its own rows and sends only model updates over gRPC
+ mutual TLS; the aggregator combines them with a **robust** rule (coordinate-wise median by
default), so one client sending bad updates cannot drag the global model away. ``--poison``
makes c3 the largest client and flips all its labels (data poisoning), to see it.

Run it in four terminals (the setup step plays every operator once)::

    python examples/fedavg_clients.py setup fl-demo [--poison] [--aggregator median]
    python examples/fedavg_clients.py aggregator fl-demo     # terminal 1
    python examples/fedavg_clients.py c1 fl-demo             # terminals 2, 3 and 4
    python examples/fedavg_clients.py c2 fl-demo
    python examples/fedavg_clients.py c3 fl-demo

Data: FATE's ``default_credit_homo_*`` files when ``$VFL_SHARED_DATA`` holds them, else the
bundled default-credit data joined and split by rows (20% held out for the aggregator's test).
Compare ``setup --poison --aggregator fedavg``: sample-weighted averaging follows the attacker.
"""

from __future__ import annotations

import argparse
import json
import os
from importlib import resources
from pathlib import Path

import pandas as pd

from protocols.config import load_federation
from protocols.grpc import PartyNode
from protocols.pki import init_federation
from vfl.jobs import load_job, run_job

CLIENTS = ("c1", "c2", "c3")
JOB = """\
[job]
id = "fedavg-clients"
type = "fedavg"
aggregator = "aggregator"
{sections}
[crypto]
scheme = "plain"  # updates travel signed, over mutual TLS, but unencrypted to the aggregator

[model]
model = "logistic"
rounds = {rounds}
aggregator = "{aggregator}"
local_epochs = 1
learning_rate = 0.1
round_timeout = 120
"""


def load_frames() -> dict[str, pd.DataFrame]:
    """``{party: rows}``: the homo split of ``$VFL_SHARED_DATA`` or the bundled data by rows."""
    shared = Path(os.environ.get("VFL_SHARED_DATA", "/nonexistent"))
    names = ["guest", "host_1", "host_2", "test"]
    if all((shared / f"default_credit_homo_{n}.csv").is_file() for n in names):
        frames = [pd.read_csv(shared / f"default_credit_homo_{n}.csv") for n in names]
    else:
        with resources.as_file(resources.files("vfl") / "data") as data:
            guest = pd.read_csv(data / "default_credit_hetero_guest.csv.gz")
            host = pd.read_csv(data / "default_credit_hetero_host.csv.gz")
        joined = guest.merge(host, on="id", suffixes=("", "_retail"))
        joined = joined.sample(frac=1.0, random_state=0).reset_index(drop=True)
        cut = [0, 8000, 16000, 24000, len(joined)]
        frames = [joined.iloc[a:b] for a, b in zip(cut, cut[1:], strict=False)]
    return dict(zip([*CLIENTS, "aggregator"], frames, strict=True))


def setup(args: argparse.Namespace) -> None:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, df in load_frames().items():
        if name != "aggregator":  # with --poison, c1 and c2 are small banks, c3 a big attacker
            df = df.head(args.rows // 4 if args.poison and name != "c3" else args.rows)
        if name == "c3" and args.poison:
            df = df.assign(y=1 - df["y"])  # label flipping: every update c3 sends is harmful
        df.to_csv(out / f"{name}.csv", index=False)
    sections = "".join(
        f'\n[parties.{p}]\ndata = "{p}.csv"\nid_column = "id"\nlabel_column = "y"\n'
        for p in ("aggregator", *CLIENTS)
    )
    job = JOB.format(sections=sections, rounds=args.rounds, aggregator=args.aggregator)
    (out / "job.toml").write_text(job)
    init_federation(["aggregator", *CLIENTS], out / "federation", base_port=args.base_port)
    print(f"wrote {out}: job.toml, federation/, aggregator.csv, {', '.join(CLIENTS)} CSVs")


def party(args: argparse.Namespace) -> None:
    out, me = Path(args.dir), args.command
    job = load_job(out / "job.toml")
    with PartyNode(load_federation(out / "federation" / "federation.toml"), me) as node:
        channel = node.channel(job.job.id, default_timeout=600.0)
        try:
            # Prints each round (accepted / rejected updates, test AUC) as the aggregator sees it.
            result = run_job(job, party=me, channel=channel, work_dir=out / me, progress=True)
        finally:
            channel.close()
    if args.json:
        print(json.dumps({k: result[k] for k in ("party", "role", "metrics")}, default=float))
        return
    print(f"{me} ({result['role']}):")
    for name, value in result["metrics"].items():
        print(f"  {name} = {value:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "aggregator", *CLIENTS])
    parser.add_argument("dir", help="the example's folder (made by setup)")
    parser.add_argument("--rows", type=int, default=8000, help="setup: rows per client")
    parser.add_argument("--rounds", type=int, default=10, help="setup: training rounds")
    parser.add_argument("--aggregator", default="median", help="setup: median, krum, fedavg, ...")
    parser.add_argument("--poison", action="store_true", help="setup: c3 (4x larger) lies")
    parser.add_argument("--base-port", type=int, default=50071, help="setup: first port")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    (setup if args.command == "setup" else party)(args)


if __name__ == "__main__":
    main()
