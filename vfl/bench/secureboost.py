"""SecureBoost benchmark: seconds per tree, Paillier vs the plain protocol vs XGBoost, same run.

Default credit (bundled ``vfl/data``: bank = guest, ``y`` and 13 columns; retailer = host, 10
columns), the fixed 80/20 split (24,000 training rows). Each federated variant runs the two
parties as OS processes over the mutual-TLS gRPC transport; XGBoost (``tree_method="hist"``,
same trees, depth, learning rate and bins, one thread) trains on the joined columns in this
process. Where the time goes comes from each party's own timers (``timing``): encryption,
histograms, bin packing and re-randomisation, decryption; the rest of the wall time is the
channel (signing, encoding, the network) and the label party's split finding.
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

from vfl.bench.common import machine_info
from vfl.jobs import MeteredChannel
from vfl.metrics import auc
from vfl.secureboost import SecureBoostConfig, SecureBoostFeatureParty, SecureBoostLabelParty

__all__ = ["add_arguments", "run"]

DATA = str(Path(__file__).resolve().parent.parent / "data")
SPLIT_SEED = 0
GUEST, HOST = "default_credit_hetero_guest.csv.gz", "default_credit_hetero_host.csv.gz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=DATA)
    parser.add_argument("--trees", type=int, default=3)
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--max-bin", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--rows", type=int, default=0, help="cap on training rows (0 = all)")
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument(
        "--processes", type=int, default=0, help="worker processes per party (0 = in-process)"
    )


def _data(data_dir: str, rows: int) -> tuple[pd.DataFrame, ...]:
    g = pd.read_csv(Path(data_dir) / GUEST)
    h = pd.read_csv(Path(data_dir) / HOST)
    if not (g["id"].to_numpy() == h["id"].to_numpy()).all():
        raise ValueError("guest and host files are not in the same id order")
    test = np.random.default_rng(SPLIT_SEED).random(len(g)) < 0.2
    g_tr, g_te = g[~test].drop(columns="id"), g[test].drop(columns="id")
    h_tr, h_te = h[~test].drop(columns="id"), h[test].drop(columns="id")
    if rows:
        g_tr, h_tr = g_tr.iloc[:rows], h_tr.iloc[:rows]
    return tuple(f.reset_index(drop=True) for f in (g_tr, h_tr, g_te, h_te))


def _config(spec: dict[str, Any]) -> SecureBoostConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plain scheme warns; it is the baseline here
        return SecureBoostConfig(
            trees=spec["trees"],
            max_depth=spec["max_depth"],
            learning_rate=spec["learning_rate"],
            max_bin=spec["max_bin"],
            scheme=spec["scheme"],
            key_bits=spec["key_bits"],
            insecure_allow_small_keys=spec["key_bits"] < 2048,
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Both parties as OS processes over mutual-TLS gRPC (:func:`_worker`)."""
    from protocols.pki import init_federation

    with tempfile.TemporaryDirectory(prefix="vfl-bench-secureboost-") as tmp:
        root = Path(tmp)
        addresses = {n: f"127.0.0.1:{_free_port()}" for n in ("bank", "retailer")}
        federation = init_federation(["bank", "retailer"], root / "fed", addresses=addresses)
        spec = {
            **spec,
            "federation": str(federation),
            "job_id": f"bench-secureboost-{spec['scheme']}-{os.getpid()}-{time.time_ns()}",
        }
        procs = {}
        for party in ("bank", "retailer"):
            path = root / f"{party}.json"
            path.write_text(json.dumps({**spec, "party": party}))
            procs[party] = subprocess.Popen(
                [sys.executable, "-m", "vfl.bench.secureboost", str(path)],
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
        bank = json.loads(outputs["bank"][0].strip().splitlines()[-1])
        retailer = json.loads(outputs["retailer"][0].strip().splitlines()[-1])
        bank["bytes_sent"] = {"bank": bank["bytes_sent"], "retailer": retailer["bytes_sent"]}
        bank["timing"] = {"bank": bank["timing"], "retailer": retailer["timing"]}
        bank["fit_cpu_seconds"] = {
            "bank": bank["fit_cpu_seconds"],
            "retailer": retailer["fit_cpu_seconds"],
        }
        return dict(bank)


def _worker(spec_path: str) -> int:
    """One party of :func:`_grpc_run`: its columns, its gRPC node, train, score the test rows."""
    from protocols.config import load_federation
    from protocols.grpc import PartyNode

    spec = json.loads(Path(spec_path).read_text())
    g_tr, h_tr, g_te, h_te = _data(spec["data_dir"], spec["rows"])
    cfg = _config(spec)
    processes = spec["processes"] or None
    node = PartyNode(load_federation(spec["federation"]), spec["party"]).start()
    try:
        channel = MeteredChannel(node.channel(spec["job_id"], default_timeout=3600.0))
        try:
            start, cpu = time.perf_counter(), time.process_time()
            if spec["party"] == "bank":
                label = SecureBoostLabelParty(cfg, label_column="y", processes=processes)
                label.fit(g_tr, channel=channel, feature_parties=["retailer"])
                fit = time.perf_counter() - start
                fit_cpu = time.process_time() - cpu
                proba = label.predict_proba(g_te, channel=channel)
                out: dict[str, Any] = {
                    "scheme": cfg.scheme,
                    "trees": len(label.forest_),
                    "fit_seconds": fit,
                    "seconds_per_tree": fit / max(1, len(label.forest_)),
                    # CPU seconds of this process (all its threads) while training: a figure
                    # that a machine shared with other work moves far less than wall time
                    "fit_cpu_seconds": fit_cpu,
                    "test_auc": auc(g_te["y"].to_numpy(), proba),
                    "timing": label.timing_,
                }
            else:
                feature = SecureBoostFeatureParty(cfg, processes=processes)
                feature.fit(h_tr, channel=channel, label_party="bank")
                fit_cpu = time.process_time() - cpu
                feature.predict(h_te, channel=channel)
                out = {"timing": feature.timing_, "fit_cpu_seconds": fit_cpu}
            out["bytes_sent"] = channel.bytes_sent
        finally:
            channel.close()
    finally:
        node.stop()
    print(json.dumps(out))
    return 0


def _xgboost(spec: dict[str, Any]) -> dict[str, Any]:
    import xgboost as xgb

    g_tr, h_tr, g_te, h_te = _data(spec["data_dir"], spec["rows"])
    x_tr = pd.concat([g_tr.drop(columns="y"), h_tr.add_prefix("h_")], axis=1)
    x_te = pd.concat([g_te.drop(columns="y"), h_te.add_prefix("h_")], axis=1)
    model = xgb.XGBClassifier(
        n_estimators=spec["trees"],
        max_depth=spec["max_depth"],
        learning_rate=spec["learning_rate"],
        max_bin=spec["max_bin"],
        tree_method="hist",
        n_jobs=1,
    )
    start = time.perf_counter()
    model.fit(x_tr, g_tr["y"])
    fit = time.perf_counter() - start
    return {
        "fit_seconds": fit,
        "seconds_per_tree": fit / spec["trees"],
        "test_auc": auc(g_te["y"].to_numpy(), model.predict_proba(x_te)[:, 1]),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "data_dir": args.data_dir,
        "rows": args.rows,
        "trees": args.trees,
        "max_depth": args.max_depth,
        "max_bin": args.max_bin,
        "learning_rate": args.learning_rate,
        "key_bits": args.key_bits,
        "processes": args.processes,
    }
    load_before = os.getloadavg()
    plain = _grpc_run({**spec, "scheme": "plain"})
    paillier = _grpc_run({**spec, "scheme": "paillier"})
    reference = _xgboost(spec)
    return {
        "benchmark": "secureboost",
        "machine": machine_info(),
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "transport": "grpc (mutual TLS, two OS processes)",
        "settings": spec,
        "baseline": "xgboost (tree_method=hist, same trees/depth/eta/bins, 1 thread, joined columns)",
        "paillier": paillier,
        "plain": plain,
        "xgboost": reference,
        "ratios": {
            "paillier_over_plain_seconds_per_tree": paillier["seconds_per_tree"]
            / plain["seconds_per_tree"],
            "paillier_over_xgboost_seconds_per_tree": paillier["seconds_per_tree"]
            / reference["seconds_per_tree"],
            "auc_gap_vs_xgboost": paillier["test_auc"] - reference["test_auc"],
        },
    }


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
