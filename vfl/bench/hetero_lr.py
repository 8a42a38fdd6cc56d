"""``vfl bench hetero-lr``: hetero LR on default credit, encrypted vs plaintext vs scikit-learn.

Data: the shared FATE default-credit files (bank = guest with ``y``, retailer = host), split 80/20
by id with a fixed seed (the same split at every party, as the job file's ``evaluation`` does).
Measured in one run: epoch time and test AUC with Paillier (2048-bit by default) and in plaintext
mode (the same protocol and messages, no encryption), and scikit-learn's ``LogisticRegression``
on the joined features as the accuracy baseline.

Transports (``--transport``): ``grpc`` (default) runs every party as its own OS process with
``vfl run`` over mutual-TLS gRPC on 127.0.0.1 (a fresh development federation, job files, the
train/test CSVs of each party, PSI alignment included); ``memory`` runs the parties as threads of
this process over the in-memory transport (every message signed and verified as over gRPC).
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

from vfl._datasets import fate_file, shared_data_dir
from vfl.bench.common import machine_info

__all__ = ["add_arguments", "run"]

DATA_DIR = shared_data_dir()
DATASETS = {"credit": "default_credit", "breast": "breast"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        choices=sorted(DATASETS),
        default="credit",
        help="shared data set (default credit)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DATA_DIR, help="folder of the FATE example files"
    )
    parser.add_argument(
        "--key-bits", type=int, default=2048, help="Paillier key size (default 2048)"
    )
    parser.add_argument(
        "--epochs", type=int, default=4, help="training epochs per mode (default 4)"
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--learning-rate", type=float, default=0.6)
    parser.add_argument(
        "--lr-schedule", default="inverse_time", choices=["constant", "inverse_time", "exponential"]
    )
    parser.add_argument("--lr-decay", type=float, default=1.0)
    parser.add_argument("--penalty", default="none", choices=["none", "l2", "l1"])
    parser.add_argument("--alpha", type=float, default=0.0)
    parser.add_argument("--approximation", default="local", choices=["local", "taylor"])
    parser.add_argument(
        "--feature-parties",
        type=int,
        default=1,
        choices=[1, 2, 3],
        help="split the host's columns over this many feature parties",
    )
    parser.add_argument(
        "--rows", type=int, default=None, help="use only the first ROWS rows (quick checks)"
    )
    parser.add_argument(
        "--skip-encrypted", action="store_true", help="plaintext mode and baseline only"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--transport",
        choices=["grpc", "memory"],
        default="grpc",
        help="parties as OS processes over gRPC (default) or threads in memory",
    )


def split_by_id(ids: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """Boolean test mask: a seeded permutation of the sorted ids, first ``fraction`` go to test."""
    order = np.sort(ids)
    perm = np.random.default_rng(seed).permutation(order.size)
    test_ids = set(order[perm[: int(fraction * order.size)]].tolist())
    return np.array([i in test_ids for i in ids.tolist()])


def _load(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    stem = DATASETS[args.data]
    guest = pd.read_csv(fate_file(args.data_dir, f"{stem}_hetero_guest.csv"))
    host = pd.read_csv(fate_file(args.data_dir, f"{stem}_hetero_host.csv"))
    # The order `vfl run` trains in: the PSI-aligned rows sorted by the canonical id.
    from psi import normalise_id

    keys = [normalise_id(v) or b"" for v in guest["id"].tolist()]
    guest = guest.iloc[sorted(range(len(keys)), key=lambda i: keys[i])]
    host = host.set_index("id").loc[guest["id"]].reset_index()
    if args.rows:
        guest, host = guest.iloc[: args.rows], host.iloc[: args.rows]
    return guest.reset_index(drop=True), host.reset_index(drop=True)


def sklearn_auc(guest: pd.DataFrame, host: pd.DataFrame, test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = np.hstack(
        [guest.drop(columns=["id", "y"]).to_numpy(float), host.drop(columns=["id"]).to_numpy(float)]
    )
    y = guest["y"].to_numpy()
    mean, std = x[~test].mean(axis=0), x[~test].std(axis=0)
    x = (x - mean) / np.where(std > 0, std, 1.0)
    model = LogisticRegression(max_iter=5000).fit(x[~test], y[~test])
    return float(roc_auc_score(y[test], model.decision_function(x[test])))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _model_table(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "penalty": args.penalty,
        "lr_schedule": args.lr_schedule,
        "lr_decay": args.lr_decay,
        "alpha": args.alpha,
        "approximation": args.approximation,
        "validation_fraction": 0.0,
        "seed": args.seed,
    }


def _split_hosts(args: argparse.Namespace, host: pd.DataFrame) -> dict[str, pd.DataFrame]:
    columns = [c for c in host.columns if c != "id"]
    chunks = np.array_split(np.array(columns), args.feature_parties)
    names = ["retailer", "telco", "insurer"][: args.feature_parties]
    return {n: host[["id", *chunk.tolist()]] for n, chunk in zip(names, chunks, strict=True)}


def write_job(
    root: Path,
    *,
    job_id: str,
    scheme: str,
    key_bits: int,
    model: dict[str, Any],
    guest: pd.DataFrame,
    hosts: dict[str, pd.DataFrame],
    test: np.ndarray,
) -> Path:
    """Each party's train/test CSV and one job file (every party runs the same file)."""
    lines = ["[job]", f'id = "{job_id}"', 'type = "hetero_lr"', 'label_party = "bank"', ""]
    for name, frame in {"bank": guest, **hosts}.items():
        frame[~test].to_csv(root / f"{name}_train.csv", index=False)
        frame[test].to_csv(root / f"{name}_test.csv", index=False)
        lines += [f"[parties.{name}]", f'data = "{name}_train.csv"']
        lines += [f'test_data = "{name}_test.csv"', 'id_column = "id"']
        lines += ['label_column = "y"', ""] if name == "bank" else [""]
    lines += ["[crypto]", f'scheme = "{scheme}"', f"key_bits = {key_bits}", ""]
    lines += ["[model]", *(f"{k} = {json.dumps(v)}" for k, v in model.items()), ""]
    path = root / "job.toml"
    path.write_text("\n".join(lines))
    return path


def train_grpc(
    args: argparse.Namespace, scheme: str, guest: pd.DataFrame, host: pd.DataFrame, test: np.ndarray
) -> dict[str, Any]:
    """Every party an OS process running ``python -m vfl.cli.run`` over mutual-TLS gRPC."""
    from protocols.pki import init_federation

    hosts = _split_hosts(args, host)
    names = ["bank", *hosts]
    with tempfile.TemporaryDirectory(prefix="vfl-bench-hetero-lr-") as tmp:
        root = Path(tmp)
        addresses = {n: f"127.0.0.1:{_free_port()}" for n in names}
        federation = init_federation(names, root / "federation", addresses=addresses)
        job = write_job(
            root,
            job_id=f"bench-hetero-lr-{scheme}-{os.getpid()}",
            scheme=scheme,
            key_bits=args.key_bits,
            model=_model_table(args),
            guest=guest,
            hosts=hosts,
            test=test,
        )
        command = [sys.executable, "-m", "vfl.cli.run", str(job), "--config", str(federation)]
        command += ["--json", "--timeout", "3600"]
        if args.key_bits < 2048:
            command.append("--insecure-small-keys")
        env = dict(os.environ, GRPC_VERBOSITY="ERROR")
        start = time.perf_counter()
        procs = {
            n: subprocess.Popen(
                [*command, "--party", n, "--work-dir", str(root / n)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for n in names
        }
        outputs = {n: p.communicate() for n, p in procs.items()}
        wall = time.perf_counter() - start
        results: dict[str, dict[str, Any]] = {}
        for n, (out, err) in outputs.items():
            if procs[n].returncode != 0:
                last = err.strip().splitlines()[-1] if err.strip() else "no output"
                raise RuntimeError(f"party {n} failed ({procs[n].returncode}): {last}")
            results[n] = json.loads(out.strip().splitlines()[-1])
    bank = results["bank"]
    epochs = [r["seconds"] for r in bank["history"]]
    return {
        "scheme": scheme,
        "key_bits": bank["crypto"]["key_bits"],
        "feature_parties": len(hosts),
        "epochs": len(epochs),
        "epoch_seconds": epochs,
        "epoch_seconds_mean": float(np.mean(epochs)),
        "total_seconds": wall,
        "timing_bank": bank["timing"],
        "train_cpu_seconds_per_epoch": {
            n: r["timing"]["train_cpu"] / max(1, len(epochs)) for n, r in results.items()
        },
        "psi_intersection_size": bank["psi"]["intersection_size"],
        "test_auc": bank["metrics"]["test_auc"],
        "test_ks": bank["metrics"]["test_ks"],
        "test_logloss": bank["metrics"]["test_logloss"],
        "bytes_sent": sum(int(r["bytes_sent"]) for r in results.values()),
    }


def train_once(
    args: argparse.Namespace, scheme: str, guest: pd.DataFrame, host: pd.DataFrame, test: np.ndarray
) -> dict[str, Any]:
    """Fit on the training rows, evaluate on the test rows; returns timing, AUC and bytes."""
    from protocols.memory import InMemoryNetwork
    from protocols.testkit import run_parties
    from vfl.hetero_lr import (
        CryptoSettings,
        HeteroLRConfig,
        HeteroLRFeatureParty,
        HeteroLRLabelParty,
        SchemeName,
    )

    crypto = CryptoSettings(
        scheme=SchemeName(scheme),
        key_bits=args.key_bits,
        insecure_allow_small_keys=args.key_bits < 2048,
    )
    cfg = HeteroLRConfig.from_mapping(_model_table(args), crypto=crypto)
    hosts = _split_hosts(args, host)
    names = list(hosts)
    net = InMemoryNetwork(["bank", *names], job_id=f"bench-hetero-lr-{scheme}", seed=args.seed)
    label = HeteroLRLabelParty(cfg, id_column="id")
    features = {n: HeteroLRFeatureParty(cfg, id_column="id") for n in names}
    train_g, test_g = guest[~test], guest[test]

    def bank(ch: Any) -> Any:
        label.fit(train_g, channel=ch)
        return label.evaluate(test_g, channel=ch)

    def party(name: str) -> Any:
        def fn(ch: Any) -> Any:
            features[name].fit(hosts[name][~test], channel=ch, label_party="bank")
            return features[name].evaluate(hosts[name][test], channel=ch)

        return fn

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = run_parties(
            {"bank": bank, **{n: party(n) for n in names}}, network=net, timeout=24 * 3600.0
        )
    total = time.perf_counter() - start
    epochs = [r["seconds"] for r in label.history_]
    return {
        "scheme": scheme,
        "key_bits": label.crypto_["key_bits"],
        "feature_parties": len(names),
        "epochs": len(epochs),
        "epoch_seconds": epochs,
        "epoch_seconds_mean": float(np.mean(epochs)),
        "total_seconds": total,
        "test_auc": results["bank"]["auc"],
        "test_ks": results["bank"]["ks"],
        "test_logloss": results["bank"]["logloss"],
        "bytes_sent": net.transcript.bytes_sent(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    guest, host = _load(args)
    test = split_by_id(guest["id"].to_numpy(), fraction=0.2, seed=args.seed)
    baseline = sklearn_auc(guest, host, test)
    train = train_grpc if args.transport == "grpc" else train_once
    plain = train(args, "plain", guest, host, test)
    result: dict[str, Any] = {
        "benchmark": "hetero-lr",
        "machine": machine_info(),
        "note": "measured while other work shared the 2 cores",
        "transport": "gRPC + mutual TLS, one OS process per party (vfl run)"
        if args.transport == "grpc"
        else "in-memory (threads in one process; signed envelopes)",
        "data": {
            "name": DATASETS[args.data],
            "rows": int(guest.shape[0]),
            "train_rows": int((~test).sum()),
            "test_rows": int(test.sum()),
            "label_party_features": guest.shape[1] - 2,
            "feature_party_features": host.shape[1] - 1,
        },
        "settings": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "lr_schedule": args.lr_schedule,
            "lr_decay": args.lr_decay,
            "approximation": args.approximation,
            "penalty": args.penalty,
            "alpha": args.alpha,
        },
        "baseline": {
            "name": "sklearn.linear_model.LogisticRegression (joined features)",
            "test_auc": baseline,
        },
        "plain": plain,
    }
    if not args.skip_encrypted:
        encrypted = train(args, "paillier", guest, host, test)
        result["paillier"] = encrypted
        result["ratios"] = {
            "epoch_time_paillier_over_plain": encrypted["epoch_seconds_mean"]
            / plain["epoch_seconds_mean"],
            "auc_paillier_minus_sklearn": encrypted["test_auc"] - baseline,
            "auc_paillier_minus_plain": encrypted["test_auc"] - plain["test_auc"],
        }
    else:
        result["ratios"] = {"auc_plain_minus_sklearn": plain["test_auc"] - baseline}
    return result
