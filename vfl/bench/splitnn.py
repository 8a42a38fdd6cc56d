"""``vfl bench splitnn``: split NN, plain vs Paillier vs CKKS, against a centralised torch MLP of
the same total architecture trained in the same run, on default credit (and Vehicle).

Bank (guest, label ``y``) and retailer (host); 80/20 split by id with a fixed seed (0).
Architecture: bottoms ``n_g -> 16 -> 8`` and ``n_h -> 16 -> 8`` (ReLU), interactive layer
``16 -> 8`` (ReLU), top ``8 -> 1`` (binary) or ``8 -> K``; the centralised MLP concatenates the
two bottoms. Both start from the same weights (built in the same order from ``--seed``), except
the interactive layer's feature-party part ``W_H``, which in the split NN is the sum of two
secret random shares (same variance as torch's init). With ``--transport grpc`` (default) each
party is its own OS process (``python -m vfl.bench.splitnn SPEC.json``) over the mutual-TLS gRPC
transport; ``memory`` runs them as threads. CKKS runs once per ``--seeds`` value (AUC tracking
over seeds); Paillier runs ``--paillier-epochs`` (batch ``--paillier-batch-size``) on
``--paillier-rows`` rows (0 = all) and is compared with the centralised MLP trained for as many
epochs on the same batches. Leak AUCs come from the gradients
the retailer received, with and without the default defence.

Vehicle (``--vehicle``; ``--no-credit`` runs it alone) is compared by stratified
``--vehicle-folds``-fold cross-validation (default 5, shuffled with seed 0): on every fold the
split model (``--vehicle-scheme``, CKKS by default, over ``--transport``) and the centralised MLP
train on the same rows from the same initial weights (``W_H`` aside) for every epoch (no early
stopping for either) and are tested on the same held-out fold; the result gives per-fold
accuracies, the mean gap and its standard error, once per ``--vehicle-defence`` noise multiplier
(default 0: defence off). CKKS over ``memory`` keeps every ciphertext in the in-memory network's
transcript (about 20 GB for 5 folds of 60 epochs), so use ``grpc`` for it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold
from torch import nn

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl._datasets import fate_file, shared_data_dir
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

log = logging.getLogger(__name__)

DATA = str(shared_data_dir())
UNITS = 8
SPLIT_SEED = 0  # the 80/20 train/test split by id, fixed across model seeds


@dataclass(frozen=True)
class Dataset:
    name: str
    guest: str
    host: str
    epochs: int
    batch_size: int
    learning_rate: float
    interactive_lr: float


DATASETS = {
    "credit": Dataset(
        "default credit, bank = guest (y + 13 columns), retailer = host (10 columns)",
        "default_credit_hetero_guest.csv",
        "default_credit_hetero_host.csv",
        epochs=5,
        batch_size=1024,
        learning_rate=0.01,
        interactive_lr=0.05,
    ),
    "vehicle": Dataset(
        "Vehicle (4 classes), bank = guest (y + 9 columns), retailer = host (9 columns)",
        "vehicle_scale_hetero_guest.csv",
        "vehicle_scale_hetero_host.csv",
        epochs=60,
        batch_size=32,
        learning_rate=0.01,
        interactive_lr=0.5,
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rows", type=int, default=0, help="cap on training rows (0 = all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paillier-epochs", type=int, default=1)
    parser.add_argument("--paillier-batch-size", type=int, default=128)
    parser.add_argument("--paillier-rows", type=int, default=0, help="0 = all training rows")
    parser.add_argument("--paillier-test-rows", type=int, default=0, help="0 = all test rows")
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="worker processes per party for Paillier (0 = serial)",
    )
    parser.add_argument("--credit", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--vehicle", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--vehicle-folds",
        type=int,
        default=5,
        help="Vehicle: stratified k-fold cross-validation, the same folds for both models",
    )
    parser.add_argument(
        "--vehicle-scheme",
        choices=[s.value for s in Scheme],
        default=Scheme.CKKS.value,
        help="Vehicle: the interactive layer's scheme (plain runs the same protocol unencrypted)",
    )
    parser.add_argument(
        "--vehicle-defence",
        type=float,
        nargs="+",
        default=[0.0],
        help="Vehicle: defence noise multipliers to run (0 = off), each over all folds",
    )
    parser.add_argument(
        "--transport",
        choices=["grpc", "memory"],
        default="grpc",
        help="grpc: each party its own OS process over mutual-TLS gRPC; memory: threads",
    )


# -- data and models ------------------------------------------------------------------------------
def _data(
    data_dir: str, dataset: str, rows: int = 0, *, fold: int | None = None, folds: int = 5
) -> tuple[pd.DataFrame, ...]:
    """Train and test frames: the fixed 80/20 split by id, or with ``fold`` that fold of a
    stratified ``folds``-fold partition (shuffled with :data:`SPLIT_SEED`) as the test rows."""
    spec = DATASETS[dataset]
    g = pd.read_csv(fate_file(data_dir, spec.guest))
    h = pd.read_csv(fate_file(data_dir, spec.host))
    if not (g["id"].to_numpy() == h["id"].to_numpy()).all():
        raise ValueError("guest and host files are not in the same id order")
    if fold is None:
        test = np.random.default_rng(SPLIT_SEED).random(len(g)) < 0.2
    else:
        test = _fold_mask(g["y"].to_numpy(), fold=fold, folds=folds)
    g_tr, g_te = g[~test].drop(columns="id"), g[test].drop(columns="id")
    h_tr, h_te = h[~test].drop(columns="id"), h[test].drop(columns="id")
    if rows:
        g_tr, h_tr = g_tr.iloc[:rows], h_tr.iloc[:rows]
    return g_tr, h_tr, g_te, h_te


def _fold_mask(y: np.ndarray, *, fold: int, folds: int) -> np.ndarray:
    """Test-row mask of fold ``fold`` of a stratified ``folds``-fold partition of ``y``."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SPLIT_SEED)
    _, test_index = list(splitter.split(np.zeros(len(y)), y))[fold]
    mask = np.zeros(len(y), dtype=bool)
    mask[test_index] = True
    return mask


def _modules(seed: int, n_g: int, n_h: int, n_out: int) -> tuple[nn.Module, ...]:
    """Bottoms, the interactive ``Linear(16, 8)`` and the output layer, in one seeded order."""
    torch.manual_seed(seed)
    bottom_g, bottom_h = build_mlp([n_g, 16, 8]), build_mlp([n_h, 16, 8])
    return bottom_g, bottom_h, nn.Linear(16, UNITS), nn.Linear(UNITS, n_out)


def _config(
    *,
    scheme: Scheme,
    defence: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    key_bits: int,
    processes: int,
    interactive_lr: float = 0.05,
    patience: int = 3,
) -> SplitNNConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crypto = CryptoConfig(
            scheme=scheme,
            key_bits=key_bits,
            processes=(processes or None) if scheme is Scheme.PAILLIER else None,
        )
    return SplitNNConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        interactive_lr=interactive_lr,
        interactive_units=UNITS,
        validation_fraction=0.0,
        patience=patience,
        seed=seed,
        crypto=crypto,
        defence=DefenceConfig(noise_multiplier=defence),
    )


def _parties(
    cfg: SplitNNConfig, n_g: int, n_h: int, n_out: int
) -> tuple[SplitNNLabelParty, SplitNNFeatureParty]:
    """The split model starting from the centralised model's weights (``W_H`` aside)."""
    bottom_g, bottom_h, joint, out = _modules(cfg.seed, n_g, n_h, n_out)
    assert isinstance(joint, nn.Linear)
    own = nn.Linear(8, UNITS)
    with torch.no_grad():
        own.weight.copy_(joint.weight[:, :8])
        own.bias.copy_(joint.bias)
    label = SplitNNLabelParty(
        nn.Sequential(nn.ReLU(), out),
        bottom=bottom_g,
        config=cfg,
        feature_parties=["retailer"],
    )
    label.own = own
    feature = SplitNNFeatureParty(bottom_h, config=cfg, label_party="bank")
    return label, feature


def _summary(
    cfg: SplitNNConfig, label: SplitNNLabelParty, metrics: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    out = {
        "scheme": cfg.crypto.scheme.value,
        "seed": cfg.seed,
        "epochs": len(label.history),
        "epoch_seconds": [r["seconds"] for r in label.history],
        "samples_per_s": float(np.mean([r["samples_per_s"] for r in label.history])),
        "privacy": label.privacy,
        **extra,
    }
    for key in ("test_auc", "test_accuracy"):
        if key in metrics:
            out[key] = metrics[key]
    return out


# -- one split run ----------------------------------------------------------------------------------
def _memory_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Both parties as threads over the in-memory transport."""
    g_tr, h_tr, g_te, h_te, cfg, label, feature = _prepare(spec)
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
    )


def _prepare(spec: dict[str, Any]) -> tuple[Any, ...]:
    g_tr, h_tr, g_te, h_te = _data(
        spec["data_dir"],
        spec["dataset"],
        spec["rows"],
        fold=spec.get("fold"),
        folds=spec.get("folds", 5),
    )
    if spec["test_rows"]:
        g_te, h_te = g_te.iloc[: spec["test_rows"]], h_te.iloc[: spec["test_rows"]]
    cfg = _config(
        scheme=Scheme(spec["scheme"]),
        defence=spec["defence"],
        epochs=spec["epochs"],
        batch_size=spec["batch_size"],
        learning_rate=spec["learning_rate"],
        seed=spec["seed"],
        key_bits=spec["key_bits"],
        processes=spec["processes"],
        interactive_lr=spec.get("interactive_lr", 0.05),
        patience=spec.get("patience", 3),
    )
    n_out = int(g_tr["y"].nunique())
    label, feature = _parties(cfg, g_tr.shape[1] - 1, h_tr.shape[1], 1 if n_out == 2 else n_out)
    return g_tr, h_tr, g_te, h_te, cfg, label, feature


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Both parties as OS processes over the mutual-TLS gRPC transport (``_worker`` below)."""
    from protocols.pki import init_federation

    with tempfile.TemporaryDirectory(prefix="vfl-bench-splitnn-") as tmp:
        root = Path(tmp)
        addresses = {n: f"127.0.0.1:{_free_port()}" for n in ("bank", "retailer")}
        federation = init_federation(["bank", "retailer"], root / "fed", addresses=addresses)
        spec = {
            **spec,
            "federation": str(federation),
            "job_id": f"bench-splitnn-{spec['scheme']}-{os.getpid()}-{time.time_ns()}",
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
    g_tr, h_tr, g_te, h_te, cfg, label, feature = _prepare(spec)
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


# -- the centralised baseline -----------------------------------------------------------------------
def _centralised(
    data_dir: str,
    dataset: str,
    *,
    seed: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    fold: int | None = None,
    folds: int = 5,
) -> dict[str, Any]:
    """The same total architecture and initial weights on the joined features; same optimiser
    (Adam), learning rate, batches and epochs."""
    g_tr, h_tr, g_te, h_te = _data(data_dir, dataset, fold=fold, folds=folds)
    classes = np.unique(g_tr["y"].to_numpy())
    binary = classes.size == 2
    bottom_g, bottom_h, joint, out = _modules(
        seed, g_tr.shape[1] - 1, h_tr.shape[1], 1 if binary else int(classes.size)
    )
    head = nn.Sequential(joint, nn.ReLU(), out)
    params = [*bottom_g.parameters(), *bottom_h.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=learning_rate)

    def model(xg: torch.Tensor, xh: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = head(torch.cat([bottom_g(xg), bottom_h(xh)], dim=1))
        return logits.reshape(-1) if binary else logits

    def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if binary:
            return nn.functional.binary_cross_entropy_with_logits(logits, y.float())
        return nn.functional.cross_entropy(logits, y)

    xg = torch.tensor(g_tr.drop(columns="y").to_numpy(np.float32))
    xh = torch.tensor(h_tr.to_numpy(np.float32))
    y = torch.from_numpy(np.searchsorted(classes, g_tr["y"].to_numpy()).astype(np.int64))
    start = time.perf_counter()
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(y))
        for s in range(0, len(y), batch_size):
            idx = torch.from_numpy(order[s : s + batch_size])
            loss = loss_fn(model(xg[idx], xh[idx]), y[idx])
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = model(
            torch.tensor(g_te.drop(columns="y").to_numpy(np.float32)),
            torch.tensor(h_te.to_numpy(np.float32)),
        )
    y_te = np.searchsorted(classes, g_te["y"].to_numpy())
    result: dict[str, Any] = {
        "name": "centralised torch MLP, same architecture and initial weights, joined features",
        "seed": seed,
        "epochs": epochs,
        "samples_per_s": len(y) * epochs / seconds,
    }
    if binary:
        result["test_auc"] = auc(y_te, torch.sigmoid(logits).numpy())
    else:
        result["test_accuracy"] = float(np.mean(logits.argmax(dim=1).numpy() == y_te))
    return result


def _credit(args: argparse.Namespace, one: Any, central: Any) -> dict[str, Any]:
    """Default credit: plain, CKKS over ``--seeds``, CKKS defended, Paillier; baselines."""
    seed0 = args.seeds[0]
    base = central(seed0)
    runs: dict[str, Any] = {"plain": one(Scheme.PLAIN)}
    tracking = []
    for seed in args.seeds:
        ckks = one(Scheme.CKKS, seed=seed)
        reference = base if seed == seed0 else central(seed)
        if seed == seed0:
            runs["ckks"] = ckks
        tracking.append(
            {
                "seed": seed,
                "centralised_test_auc": reference["test_auc"],
                "ckks_test_auc": ckks["test_auc"],
                "difference": ckks["test_auc"] - reference["test_auc"],
            }
        )
    runs["ckks_defended"] = one(Scheme.CKKS, defence=DefenceConfig().noise_multiplier)
    paillier_base = central(seed0, epochs=args.paillier_epochs, batch_size=args.paillier_batch_size)
    runs["paillier"] = one(
        Scheme.PAILLIER,
        epochs=args.paillier_epochs,
        batch_size=args.paillier_batch_size,
        rows=args.paillier_rows,
        test_rows=args.paillier_test_rows,
    )
    plain_rate = runs["plain"]["samples_per_s"]
    return {
        "dataset": DATASETS["credit"].name,
        "baseline": base,
        "runs": runs,
        "ckks_tracking": tracking,
        "paillier_baseline": paillier_base,
        "ratios": {
            "ckks_auc_minus_centralised": runs["ckks"]["test_auc"] - base["test_auc"],
            "ckks_auc_minus_centralised_max_abs_over_seeds": max(
                abs(t["difference"]) for t in tracking
            ),
            "paillier_auc_minus_centralised_same_epochs": runs["paillier"]["test_auc"]
            - paillier_base["test_auc"],
            "defended_auc_drop": runs["ckks"]["test_auc"] - runs["ckks_defended"]["test_auc"],
            **{
                f"{k}_throughput_vs_plain": v["samples_per_s"] / plain_rate
                for k, v in runs.items()
                if k != "plain"
            },
        },
    }


def _mean_se(values: list[float]) -> dict[str, float]:
    """Mean and standard error ``s / sqrt(k)`` (``s`` the sample standard deviation)."""
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return {"mean": float(arr.mean()), "standard_error": se}


def _vehicle(args: argparse.Namespace, one: Any, central: Any) -> dict[str, Any]:
    """Vehicle: stratified k-fold CV, the same folds, seed and initial weights for the split
    model and the centralised MLP; per-fold accuracies, mean gap and its standard error, once
    per ``--vehicle-defence`` noise multiplier (the centralised model has no defence)."""
    vehicle, k, seed = DATASETS["vehicle"], args.vehicle_folds, args.seeds[0]
    references = [central(seed, dataset="vehicle", fold=f, folds=k) for f in range(k)]
    settings = []
    for sigma in args.vehicle_defence:
        folds = []
        for fold, reference in enumerate(references):
            split = one(
                Scheme(args.vehicle_scheme),
                dataset="vehicle",
                seed=seed,
                defence=sigma,
                epochs=vehicle.epochs,
                batch_size=vehicle.batch_size,
                learning_rate=vehicle.learning_rate,
                interactive_lr=vehicle.interactive_lr,
                patience=vehicle.epochs,  # no early stopping: the baseline runs every epoch
                fold=fold,
                folds=k,
            )
            folds.append(
                {
                    "fold": fold,
                    "test_rows": split["test_rows"],
                    "centralised_test_accuracy": reference["test_accuracy"],
                    "split_test_accuracy": split["test_accuracy"],
                    "difference_points": 100
                    * (split["test_accuracy"] - reference["test_accuracy"]),
                    "split_samples_per_s": split["samples_per_s"],
                }
            )
            log.info("vehicle sigma=%s %s", sigma, json.dumps(folds[-1]))
        gap = _mean_se([f["difference_points"] for f in folds])
        settings.append(
            {
                "defence_noise_multiplier": sigma,
                "defence": "on" if sigma > 0 else "off",
                "folds": folds,
                "split_accuracy": _mean_se([f["split_test_accuracy"] for f in folds]),
                "mean_difference_points": gap["mean"],
                "difference_standard_error_points": gap["standard_error"],
            }
        )
    return {
        "dataset": vehicle.name,
        "protocol": f"stratified {k}-fold cross-validation (shuffled, seed {SPLIT_SEED}), "
        f"the same folds, model seed ({seed}) and initial weights for both models",
        "scheme": args.vehicle_scheme,
        "transport": args.transport,
        "epochs": vehicle.epochs,
        "batch_size": vehicle.batch_size,
        "learning_rate": vehicle.learning_rate,
        "interactive_lr": vehicle.interactive_lr,
        "early_stopping": "off for both (every epoch runs)",
        "centralised_accuracy": _mean_se([r["test_accuracy"] for r in references]),
        "settings": settings,
    }


# -- the benchmark --------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    credit = DATASETS["credit"]
    base_spec: dict[str, Any] = {
        "data_dir": args.data_dir,
        "key_bits": args.key_bits,
        "processes": args.processes,
        "rows": args.rows,
        "test_rows": 0,
    }

    def one(scheme: Scheme, *, dataset: str = "credit", **kw: Any) -> dict[str, Any]:
        spec = {
            **base_spec,
            "dataset": dataset,
            "scheme": scheme.value,
            "defence": 0.0,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": credit.learning_rate,
            "seed": args.seeds[0],
            **kw,
        }
        return _grpc_run(spec) if args.transport == "grpc" else _memory_run(spec)

    def central(
        seed: int,
        *,
        dataset: str = "credit",
        epochs: int = 0,
        batch_size: int = 0,
        fold: int | None = None,
        folds: int = 5,
    ) -> Any:
        spec = DATASETS[dataset]
        return _centralised(
            args.data_dir,
            dataset,
            seed=seed,
            epochs=epochs or (args.epochs if dataset == "credit" else spec.epochs),
            batch_size=batch_size or (args.batch_size if dataset == "credit" else spec.batch_size),
            learning_rate=spec.learning_rate,
            fold=fold,
            folds=folds,
        )

    result: dict[str, Any] = {
        "benchmark": "splitnn",
        "machine": machine_info(),
        "transport": args.transport,
    }
    if args.credit:
        result.update(_credit(args, one, central))
    if args.vehicle:
        result["vehicle"] = _vehicle(args, one, central)
    return result


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
