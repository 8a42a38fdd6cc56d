"""A retailer and a bank train a split neural network with your own torch models, under CKKS.

Each organisation keeps its *bottom model* (an ``nn.Module`` defined below) and its raw features
at home. The interactive layer joining the two embeddings is computed on CKKS ciphertexts and
additive shares, so the bank never sees the retailer's embedding and the retailer never sees a
label; the retailer learns only (noised) gradients for its own embedding. The bank's *top model*
turns the joint layer into a default-risk logit.

Run it in two terminals (the setup step plays both organisations' operators once)::

    python examples/retailer_bank_splitnn.py setup snn-demo      # certificates and CSVs
    python examples/retailer_bank_splitnn.py bank snn-demo       # terminal 1
    python examples/retailer_bank_splitnn.py retailer snn-demo   # terminal 2

This uses the library directly rather than a job file: both sides build the same
``SplitNNConfig`` (their handshake refuses a mismatch, so pass the same ``--epochs`` to both).
``setup --rows 3000`` and ``--epochs 3`` make a quick run; ``--json`` prints on one line.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

import psi
from protocols.config import load_federation
from protocols.grpc import PartyNode
from protocols.pki import init_federation
from vfl.jobs import agreed_test_rows
from vfl.split_nn import SplitNNConfig, SplitNNFeatureParty, SplitNNLabelParty

JOB_ID = "retailer-bank-splitnn"


class Tower(nn.Module):
    """A bottom model: this party's features -> an 8-wide embedding (yours to change)."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 32), nn.ReLU(), nn.Linear(32, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def top_model(units: int) -> nn.Module:
    """The bank's top model: the interactive layer's ``units`` pre-activations -> one logit."""
    return nn.Sequential(nn.ReLU(), nn.Linear(units, 8), nn.ReLU(), nn.Linear(8, 1))


def bundled(name: str) -> pd.DataFrame:
    with resources.as_file(resources.files("vfl") / "data" / name) as path:
        return pd.read_csv(path)


def setup(args: argparse.Namespace) -> None:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, file, drop, seed in [("bank", "guest", 0.05, 1), ("retailer", "host", 0.07, 2)]:
        df = bundled(f"default_credit_hetero_{file}.csv.gz").head(args.rows)
        df = df[rng.random(len(df)) >= drop].sample(frac=1.0, random_state=seed)
        df.to_csv(out / f"{name}.csv", index=False)  # partial overlap, each in its own order
    init_federation(["bank", "retailer"], out / "federation", base_port=args.base_port)
    print(f"wrote bank.csv, retailer.csv and federation/ in {out}")


def party(args: argparse.Namespace) -> None:
    out, me = Path(args.dir), args.command
    # CKKS (N=8192, 128-bit) protects the interactive layer by default; the defence is on.
    config = SplitNNConfig(
        epochs=args.epochs, batch_size=256, learning_rate=0.03, validation_fraction=0.0
    )
    data = pd.read_csv(out / f"{me}.csv", dtype={"id": str})  # ids never as floats
    columns = [c for c in data.columns if c not in ("id", "y")]
    with PartyNode(load_federation(out / "federation" / "federation.toml"), me) as node:
        channel = node.channel(JOB_ID, default_timeout=600.0)
        # PSI: both sides get the shared customers' rows, in the same order; then the same split.
        rows = psi.align(data, channel=channel, id_column="id")
        if rows is None:  # not with the default reveal="all": both parties learn it
            raise RuntimeError("PSI did not reveal the intersection to this party")
        test = agreed_test_rows(len(rows), fraction=0.2, seed=0)
        train, held_out = rows[~test], rows[test]
        result: dict[str, object] = {"party": me, "intersection_size": len(rows)}
        if me == "bank":
            bank = SplitNNLabelParty(
                top_model(config.interactive_units), config=config, feature_parties=["retailer"],
                bottom=Tower(len(columns)), label_column="y", feature_columns=columns,
            )  # fmt: skip
            bank.fit(train, channel=channel)
            result["metrics"] = bank.evaluate(held_out, channel=channel, prefix="test_")
            result["privacy"] = bank.privacy  # how well the retailer could guess labels
        else:
            retailer = SplitNNFeatureParty(
                Tower(len(columns)), config=config, label_party="bank", feature_columns=columns
            )
            retailer.fit(train, channel=channel)
            retailer.evaluate(held_out, channel=channel)
        channel.close()
    print(json.dumps(result, default=float, indent=None if args.json else 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["setup", "bank", "retailer"])
    parser.add_argument("dir", help="the example's folder (made by setup)")
    parser.add_argument("--rows", type=int, default=30_000, help="setup: rows of bundled data")
    parser.add_argument("--epochs", type=int, default=3, help="bank, retailer: epochs")
    parser.add_argument("--base-port", type=int, default=50061, help="setup: the bank's port")
    parser.add_argument("--json", action="store_true", help="print the result on one line")
    args = parser.parse_args()
    (setup if args.command == "setup" else party)(args)


if __name__ == "__main__":
    main()
