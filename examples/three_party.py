"""Three organisations, one model: a bank (labels) with a retailer and a telco (features).

Hetero logistic regression with k = 2 feature parties under Paillier: multi-party PSI finds the
customers all three share, then the bank trains with each feature party's encrypted, masked
contributions. Everything runs **in one process** over the in-memory network, which takes the
same path as gRPC (encode, Ed25519-sign, verify, decode) and records a transcript: handy to try a
federation out, or to test one, before deploying one node per organisation.

    python examples/three_party.py                        # Paillier 2048, all 30,000 customers
    python examples/three_party.py --rows 3000 --epochs 2 --insecure-small-keys --json

It prints the bank's test metrics, what each party sent, and which topics the telco received
(ciphertexts, masked values and PSI tags: never a label, never another party's features).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.jobs import load_job, run_job

PARTIES = ("bank", "retailer", "telco")
JOB = """\
[job]
id = "three-party-lr"
type = "hetero_lr"
label_party = "bank"
{sections}
[crypto]
scheme = "paillier"
key_bits = {key_bits}

[model]
epochs = {epochs}
batch_size = 1024
learning_rate = 0.6
lr_schedule = "inverse_time"
"""


def bundled(name: str) -> pd.DataFrame:
    with resources.as_file(resources.files("vfl") / "data" / name) as path:
        return pd.read_csv(path)


def write_data(folder: Path, rows: int) -> None:
    """The bank keeps the guest file; the host file's 10 columns go half to each feature party."""
    guest = bundled("default_credit_hetero_guest.csv.gz").head(rows)
    host = bundled("default_credit_hetero_host.csv.gz").head(rows)
    frames = {
        "bank": guest,
        "retailer": host[["id", "x0", "x1", "x2", "x3", "x4"]],
        "telco": host[["id", "x5", "x6", "x7", "x8", "x9"]],
    }
    rng = np.random.default_rng(0)
    for seed, (name, df) in enumerate(frames.items()):
        kept = df[rng.random(len(df)) >= 0.05]  # each lacks a different 5% of the customers
        kept.sample(frac=1.0, random_state=seed).to_csv(folder / f"{name}.csv", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000, help="rows of bundled data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--insecure-small-keys", action="store_true", help="1024-bit Paillier")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="three-party-") as tmp:
        folder = Path(tmp)
        write_data(folder, args.rows)
        sections = "".join(
            f'\n[parties.{p}]\ndata = "{p}.csv"\nid_column = "id"\n'
            + ('label_column = "y"\n' if p == "bank" else "")
            for p in PARTIES
        )
        key_bits = 1024 if args.insecure_small_keys else 2048
        job_file = folder / "job.toml"
        job_file.write_text(JOB.format(sections=sections, key_bits=key_bits, epochs=args.epochs))
        job = load_job(job_file, allow_small_keys=args.insecure_small_keys)

        def party(name: str) -> Callable[[Channel], dict[str, Any]]:
            def run(channel: Channel) -> dict[str, Any]:
                return run_job(job, party=name, channel=channel, work_dir=folder / name)

            return run

        network = InMemoryNetwork(PARTIES, job_id=job.job.id, default_timeout=600.0)
        results = run_parties({p: party(p) for p in PARTIES}, network=network, timeout=3600.0)
        telco_topics = sorted({m.topic for m in network.transcript.received_by("telco")})
    summary = {
        "intersection_size": results["bank"]["psi"]["intersection_size"],
        "metrics": results["bank"]["metrics"],
        "crypto": results["bank"]["crypto"],
        "bytes_sent": {p: network.transcript.bytes_sent(p) for p in PARTIES},
        "telco_received_topics": telco_topics,
    }
    if args.json:
        print(json.dumps(summary, default=float))
        return
    print(f"{summary['intersection_size']} customers shared by all three (multi-party PSI)")
    for name, value in summary["metrics"].items():
        print(f"  bank: {name} = {value:.4f}")
    for name, sent in summary["bytes_sent"].items():
        print(f"  {name} sent {sent / 1e6:.1f} MB")
    print(f"  the telco received only these topics: {', '.join(telco_topics)}")


if __name__ == "__main__":
    main()
