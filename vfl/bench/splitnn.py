"""``vfl bench splitnn``: split NN on default credit, plain vs Paillier vs CKKS, against a
centralised torch MLP of the same total architecture trained in the same run.

Bank (guest, label ``y``, 13 columns) and retailer (host, 10 columns); 80/20 split by id with a
fixed seed. Architecture: bottoms ``13 -> 16 -> 8`` and ``10 -> 16 -> 8`` (ReLU), interactive
layer ``16 -> 8`` (ReLU), top ``8 -> 1``; the centralised MLP concatenates the two bottoms. With
``--transport grpc`` (default) each party is its own OS process (``python -m vfl.bench.splitnn
SPEC.json``) over the mutual-TLS gRPC transport; ``memory`` runs them as threads. Paillier runs on ``--paillier-rows`` rows and is evaluated on ``--paillier-test-rows`` test rows
(both reported). Leak AUCs come from the gradients the retailer received, with and without the
default defence.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl._datasets import shared_data_dir
from vfl.bench.common import machine_info
from vfl.jobs import MeteredChannel
from vfl.metrics import auc
from vfl.split_nn import (
    CryptoConfig,
    DefenceConfig,
    Scheme,
    SplitNNConfig,
    SplitNNFeatureParty,
    SplitNNLabelParty,
    build_mlp,
)

__all__ = ["add_arguments", "run"]

DATA = str(shared_data_dir())
UNITS = 8


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=0, help="cap on training rows (0 = all)")
    parser.add_argument("--paillier-rows", type=int, default=256)
    parser.add_argument("--paillier-test-rows", type=int, default=256)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--transport",
        choices=["grpc", "memory"],
        default="grpc",
        help="grpc: each party its own OS process over mutual-TLS gRPC; memory: threads",
    )


def _data(args: argparse.Namespace) -> tuple[pd.DataFrame, ...]:
    g = pd.read_csv(f"{args.data_dir}/default_credit_hetero_guest.csv")
    h = pd.read_csv(f"{args.data_dir}/default_credit_hetero_host.csv")
    if not (g["id"].to_numpy() == h["id"].to_numpy()).all():
        raise ValueError("guest and host files are not in the same id order")
    test = np.random.default_rng(args.seed).random(len(g)) < 0.2
    g_tr, g_te = g[~test].drop(columns="id"), g[test].drop(columns="id")
    h_tr, h_te = h[~test].drop(columns="id"), h[test].drop(columns="id")
    if args.rows:
        g_tr, h_tr = g_tr.iloc[: args.rows], h_tr.iloc[: args.rows]
    return g_tr, h_tr, g_te, h_te


def _config(
    args: argparse.Namespace, scheme: Scheme, *, defence: float, epochs: int
) -> SplitNNConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crypto = CryptoConfig(scheme=scheme, key_bits=args.key_bits)
    return SplitNNConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        interactive_units=UNITS,
        validation_fraction=0.0,
        seed=args.seed,
        crypto=crypto,
        defence=DefenceConfig(noise_multiplier=defence),
    )


def _parties(cfg: SplitNNConfig) -> tuple[SplitNNLabelParty, SplitNNFeatureParty]:
    torch.manual_seed(cfg.seed)
    label = SplitNNLabelParty(
        nn.Sequential(nn.ReLU(), nn.Linear(UNITS, 1)),
        bottom=build_mlp([13, 16, 8]),
        config=cfg,
        feature_parties=["retailer"],
    )
    feature = SplitNNFeatureParty(build_mlp([10, 16, 8]), config=cfg, label_party="bank")
    return label, feature


def _summary(
    cfg: SplitNNConfig, label: SplitNNLabelParty, metrics: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "scheme": cfg.crypto.scheme.value,
        "epochs": len(label.history),
        "epoch_seconds": [r["seconds"] for r in label.history],
        "samples_per_s": float(np.mean([r["samples_per_s"] for r in label.history])),
        "test_auc": metrics["test_auc"],
        "privacy": label.privacy,
        **extra,
    }


def _split_run(
    cfg: SplitNNConfig,
    g_tr: pd.DataFrame,
    h_tr: pd.DataFrame,
    g_te: pd.DataFrame,
    h_te: pd.DataFrame,
) -> dict[str, Any]:
    """Both parties as threads over the in-memory transport."""
    label, feature = _parties(cfg)
    net = InMemoryNetwork(["bank", "retailer"], job_id="bench-splitnn")
    start = time.perf_counter()
    run_parties(
        {
            "bank": lambda ch: label.fit(g_tr, channel=ch),
            "retailer": lambda ch: feature.fit(h_tr, channel=ch),
        },
        network=net,
        timeout=24 * 3600,
    )
    fit_seconds = time.perf_counter() - start
    train_bytes = net.transcript.bytes_sent()
    metrics = run_parties(
        {
            "bank": lambda ch: label.evaluate(g_te, channel=ch),
            "retailer": lambda ch: feature.evaluate(h_te, channel=ch),
        },
        network=net,
        timeout=24 * 3600,
    )["bank"]
    return _summary(
        cfg,
        label,
        metrics,
        transport="memory",
        train_rows=len(g_tr),
        test_rows=len(g_te),
        fit_seconds=fit_seconds,
        train_bytes_per_sample=train_bytes / (len(g_tr) * max(len(label.history), 1)),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc_run(
    args: argparse.Namespace,
    scheme: Scheme,
    *,
    defence: float,
    epochs: int,
    rows: int,
    test_rows: int,
) -> dict[str, Any]:
    """Both parties as OS processes over the mutual-TLS gRPC transport (``_worker`` below)."""
    from protocols.pki import init_federation

    with tempfile.TemporaryDirectory(prefix="vfl-bench-splitnn-") as tmp:
        root = Path(tmp)
        addresses = {n: f"127.0.0.1:{_free_port()}" for n in ("bank", "retailer")}
        federation = init_federation(["bank", "retailer"], root / "fed", addresses=addresses)
        spec = {
            "federation": str(federation),
            "job_id": f"bench-splitnn-{scheme.value}-{os.getpid()}-{time.time_ns()}",
            "scheme": scheme.value,
            "defence": defence,
            "epochs": epochs,
            "rows": rows,
            "test_rows": test_rows,
            "batch_size": args.batch_size,
            "key_bits": args.key_bits,
            "seed": args.seed,
            "data_dir": args.data_dir,
        }
        procs = {}
        for party in ("bank", "retailer"):
            path = root / f"{party}.json"
            path.write_text(json.dumps({**spec, "party": party}))
            procs[party] = subprocess.Popen(
                [sys.executable, "-m", "vfl.bench.splitnn", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ, GRPC_VERBOSITY="ERROR"),
            )
        outputs = {n: p.communicate() for n, p in procs.items()}
        for n, (_, err) in outputs.items():
            if procs[n].returncode != 0:
                last = err.strip().splitlines()[-1] if err.strip() else "no output"
                raise RuntimeError(f"party {n} failed ({procs[n].returncode}): {last}")
        result: dict[str, Any] = json.loads(outputs["bank"][0].strip().splitlines()[-1])
        retailer = json.loads(outputs["retailer"][0].strip().splitlines()[-1])
        result["bytes_sent"] = {
            "bank": result.pop("bytes_sent"),
            "retailer": retailer["bytes_sent"],
        }
        return result


def _worker(spec_path: str) -> int:
    """One party of :func:`_grpc_run`: load its columns, open its gRPC node, train, evaluate."""
    from protocols.config import load_federation
    from protocols.grpc import PartyNode

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)
    args = argparse.Namespace(
        data_dir=spec["data_dir"],
        seed=spec["seed"],
        rows=spec["rows"],
        batch_size=spec["batch_size"],
        key_bits=spec["key_bits"],
    )
    g_tr, h_tr, g_te, h_te = _data(args)
    if spec["test_rows"]:
        g_te, h_te = g_te.iloc[: spec["test_rows"]], h_te.iloc[: spec["test_rows"]]
    cfg = _config(args, Scheme(spec["scheme"]), defence=spec["defence"], epochs=spec["epochs"])
    label, feature = _parties(cfg)
    node = PartyNode(load_federation(spec["federation"]), spec["party"]).start()
    try:
        channel = MeteredChannel(node.channel(spec["job_id"], default_timeout=3600.0))
        try:
            start = time.perf_counter()
            if spec["party"] == "bank":
                label.fit(g_tr, channel=channel)
                fit_seconds = time.perf_counter() - start
                metrics = label.evaluate(g_te, channel=channel)
                out = _summary(
                    cfg,
                    label,
                    metrics,
                    transport="grpc (mutual TLS, two OS processes)",
                    train_rows=len(g_tr),
                    test_rows=len(g_te),
                    fit_seconds=fit_seconds,
                )
            else:
                feature.fit(h_tr, channel=channel)
                feature.evaluate(h_te, channel=channel)
                out = {}
            out["bytes_sent"] = channel.bytes_sent
        finally:
            channel.close()
    finally:
        node.stop()
    print(json.dumps(out))
    return 0


def _centralised(
    args: argparse.Namespace,
    g_tr: pd.DataFrame,
    h_tr: pd.DataFrame,
    g_te: pd.DataFrame,
    h_te: pd.DataFrame,
) -> dict[str, Any]:
    """The same total architecture on the joined features, same optimiser, batches and epochs."""
    torch.manual_seed(args.seed)
    bottom_g, bottom_h = build_mlp([13, 16, 8]), build_mlp([10, 16, 8])
    head = nn.Sequential(nn.Linear(16, UNITS), nn.ReLU(), nn.Linear(UNITS, 1))
    params = [*bottom_g.parameters(), *bottom_h.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=0.01)

    def model(xg: torch.Tensor, xh: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = head(torch.cat([bottom_g(xg), bottom_h(xh)], dim=1))
        return out.reshape(-1)

    xg = torch.tensor(g_tr.drop(columns="y").to_numpy(np.float32))
    xh = torch.tensor(h_tr.to_numpy(np.float32))
    y = torch.tensor(g_tr["y"].to_numpy(np.float32))
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = np.random.default_rng([args.seed, epoch]).permutation(len(y))
        for s in range(0, len(y), args.batch_size):
            idx = torch.from_numpy(order[s : s + args.batch_size])
            loss = nn.functional.binary_cross_entropy_with_logits(model(xg[idx], xh[idx]), y[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        p = torch.sigmoid(
            model(
                torch.tensor(g_te.drop(columns="y").to_numpy(np.float32)),
                torch.tensor(h_te.to_numpy(np.float32)),
            )
        ).numpy()
    return {
        "name": "centralised torch MLP, same architecture, joined features",
        "test_auc": auc(g_te["y"].to_numpy(), p),
        "samples_per_s": len(y) * args.epochs / seconds,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    g_tr, h_tr, g_te, h_te = _data(args)
    base = _centralised(args, g_tr, h_tr, g_te, h_te)

    def one(
        scheme: Scheme, *, defence: float, epochs: int, rows: int = 0, test_rows: int = 0
    ) -> dict[str, Any]:
        if args.transport == "grpc":
            return _grpc_run(
                args,
                scheme,
                defence=defence,
                epochs=epochs,
                rows=rows or args.rows,
                test_rows=test_rows,
            )
        n, t = rows or len(g_tr), test_rows or len(g_te)
        cfg = _config(args, scheme, defence=defence, epochs=epochs)
        return _split_run(cfg, g_tr.iloc[:n], h_tr.iloc[:n], g_te.iloc[:t], h_te.iloc[:t])

    runs = {
        "plain": one(Scheme.PLAIN, defence=0.0, epochs=args.epochs),
        "ckks": one(Scheme.CKKS, defence=0.0, epochs=args.epochs),
        "ckks_defended": one(
            Scheme.CKKS, defence=DefenceConfig().noise_multiplier, epochs=args.epochs
        ),
    }
    n_p, n_pt = args.paillier_rows, args.paillier_test_rows
    if n_p > 0:
        runs["paillier"] = one(Scheme.PAILLIER, defence=0.0, epochs=1, rows=n_p, test_rows=n_pt)
        runs["paillier"]["note"] = f"1 epoch on {n_p} training rows, tested on {n_pt} test rows"
    plain_rate = runs["plain"]["samples_per_s"]
    return {
        "benchmark": "splitnn",
        "machine": machine_info(),
        "transport": args.transport,
        "dataset": "default credit, bank = guest (y + 13 columns), retailer = host (10 columns)",
        "baseline": base,
        "runs": runs,
        "ratios": {
            "ckks_auc_minus_centralised": runs["ckks"]["test_auc"] - base["test_auc"],
            "defended_auc_drop": runs["ckks"]["test_auc"] - runs["ckks_defended"]["test_auc"],
            **{
                f"{k}_throughput_vs_plain": v["samples_per_s"] / plain_rate
                for k, v in runs.items()
                if k != "plain"
            },
        },
    }


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
