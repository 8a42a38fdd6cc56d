"""A retailer and a bank train one logistic regression under Paillier, one OS process each.

The bank holds the label (did the customer default?) and 13 credit features; the retailer holds
10 other features about the same people. Neither hands its rows to the other: PSI finds the
shared customers, then hetero LR trains with encrypted, masked gradients over gRPC + mutual TLS.

Run it in two terminals (the setup step plays both organisations' operators once)::

    python examples/retailer_bank_lr.py setup lr-demo      # certificates, CSVs, job file
    python examples/retailer_bank_lr.py bank lr-demo       # terminal 1
    python examples/retailer_bank_lr.py retailer lr-demo   # terminal 2

The bank prints the test AUC; the retailer prints what it took part in (it never sees labels).
The party step is what ``vfl run`` does; with the command line it reads: ``vfl run
lr-demo/job.toml --config lr-demo/federation/federation.toml --party bank --work-dir lr-demo/bank``.
Paillier keys are 2048 bits. ``setup --rows 3000 --epochs 2 --insecure-small-keys`` (and
``--insecure-small-keys`` on both party commands) makes a fast, insecure run for tests; ``--json``
prints the party's result as one JSON object.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from protocols.config import load_federation
from protocols.grpc import PartyNode
from protocols.pki import init_federation
from vfl.jobs import load_job, run_job

JOB = """\
[job]
id = "retailer-bank-lr"
type = "hetero_lr"
label_party = "bank"
[parties.bank]
data = "bank.csv"
id_column = "id"
label_column = "y"
[parties.retailer]
data = "retailer.csv"
id_column = "id"
[crypto]
scheme = "paillier"
key_bits = {key_bits}
[evaluation]
test_fraction = 0.2
seed = 0
[model]
epochs = {epochs}
batch_size = 1024
learning_rate = 0.6
lr_schedule = "inverse_time"
"""


def bundled(name: str) -> pd.DataFrame:
    """The default-credit data shipped in vfl/data (see its README for the source)."""
    with resources.as_file(resources.files("vfl") / "data" / name) as path:
        return pd.read_csv(path)


def setup(args: argparse.Namespace) -> None:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    bank = bundled("default_credit_hetero_guest.csv.gz").head(args.rows)
    retailer = bundled("default_credit_hetero_host.csv.gz").head(args.rows)
    # A partial overlap: each side lacks a different 5-7% of the customers, in its own row order.
    rng = np.random.default_rng(0)
    bank = bank[rng.random(len(bank)) >= 0.05].sample(frac=1.0, random_state=1)
    retailer = retailer[rng.random(len(retailer)) >= 0.07].sample(frac=1.0, random_state=2)
    bank.to_csv(out / "bank.csv", index=False)
    retailer.to_csv(out / "retailer.csv", index=False)
    key_bits = 1024 if args.insecure_small_keys else 2048
    (out / "job.toml").write_text(JOB.format(key_bits=key_bits, epochs=args.epochs))
    # The same as `vfl certs init --parties bank,retailer --out DIR/federation`.
    init_federation(["bank", "retailer"], out / "federation", base_port=args.base_port)
    print(f"wrote {out}/bank.csv ({len(bank)} rows), retailer.csv ({len(retailer)} rows),")
    print(f"      job.toml and federation/ (bank on port {args.base_port}, retailer +1)")


def party(args: argparse.Namespace) -> None:
    out = Path(args.dir)
    job = load_job(out / "job.toml", allow_small_keys=args.insecure_small_keys)
    config = load_federation(out / "federation" / "federation.toml")
    # This party's gRPC server (mutual TLS); the channel signs and checks every message.
    with PartyNode(config, args.command) as node:
        channel = node.channel(job.job.id, default_timeout=600.0)
        try:
            result = run_job(job, party=args.command, channel=channel, work_dir=out / args.command)
        finally:
            channel.close()
    if args.json:
        print(json.dumps(result, default=float))
        return
    print(f"{args.command}: {result['psi']['intersection_size']} shared customers found by PSI")
    print(f"  crypto {result['crypto']}, sent {result['bytes_sent'] / 1e6:.1f} MB")
    for name, value in result["metrics"].items():
        print(f"  {name} = {value:.4f}")
    if not result["metrics"]:
        print("  no metrics here: only the bank holds the labels")
    print(f"  model saved to {result['model_path']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "bank", "retailer"])
    parser.add_argument("dir", help="the example's folder (made by setup)")
    parser.add_argument("--rows", type=int, default=30_000, help="setup: rows of bundled data")
    parser.add_argument("--epochs", type=int, default=3, help="setup: training epochs")
    parser.add_argument("--base-port", type=int, default=50051, help="setup: the bank's port")
    parser.add_argument(
        "--insecure-small-keys", action="store_true", help="1024-bit Paillier (tests only)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    (setup if args.command == "setup" else party)(args)


if __name__ == "__main__":
    main()
