"""``vfl bench fedavg``: horizontal FL on the shared default-credit homo files.

Baseline: centralised logistic regression on the union of the clients' rows (scikit-learn,
lbfgs), measured in the same run. Parts:

* ``homo``: FedAvg over the three given clients (guest, host_1, host_2): test AUC next to the
  baseline, seconds per round and wire bytes per round (signed envelopes + payloads, in-memory
  transport), and the same with secure aggregation (double masking, Shamir-shared keys), also
  with one client's masked update lost in round 1 (dropout recovery);
* ``dirichlet``: the union split over ``--clients`` clients by Dirichlet(``--alpha``) on labels:
  FedAvg vs FedProx (each ``mu`` of ``--mu``), and personalisation (mean per-client AUC on each
  client's held-out rows before and after local fine-tuning);
* ``byzantine``: an IID split over ``--clients`` clients, 2 of them Byzantine (sign flip x10,
  Gaussian noise, ALIE): plain FedAvg vs the default robust aggregator, each next to its clean run.
* ``grpc`` (opt-in): the IID split's clients and the aggregator as separate OS processes over gRPC
  + mutual TLS 1.3 on 127.0.0.1; one client SIGKILLs itself on receiving round 5's task.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from protocols.memory import InMemoryNetwork
from vfl._datasets import fate_file, shared_data_dir
from vfl.bench.common import machine_info
from vfl.horizontal import (
    AGGREGATOR_NAME,
    DEFAULT_ROBUST,
    Attack,
    ByzantineClient,
    FedClient,
    FedConfig,
    FedResult,
    LocalTraining,
    LogisticModel,
    Participant,
    dirichlet_split,
    logistic_factory,
    simulate,
)
from vfl.metrics import auc

__all__ = ["add_arguments", "run"]

DATA_DIR = shared_data_dir()
_HOMO = ("guest", "host_1", "host_2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="FATE example files")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=10, help="clients of the simulated splits")
    parser.add_argument("--alpha", type=float, default=0.3, help="Dirichlet concentration")
    parser.add_argument("--mu", type=float, nargs="+", default=[0.01, 0.1, 1.0], help="FedProx mu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parts", nargs="+", default=["homo", "dirichlet", "byzantine"],
        choices=["homo", "dirichlet", "byzantine", "grpc"],
    )  # fmt: skip


def _load(data_dir: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    dfs = {
        k: pd.read_csv(fate_file(data_dir, f"default_credit_homo_{k}.csv"))
        for k in (*_HOMO, "test")
    }
    return dfs, [c for c in dfs["guest"].columns if c not in ("id", "y")]


class _Eval:
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self.model = LogisticModel(x.shape[1])

    def __call__(self, params: np.ndarray) -> dict[str, float]:
        self.model.set_params(params)
        return {"test_auc": auc(self.y, self.model.predict_proba(self.x))}


def _run(
    clients: dict[str, Participant], cfg: FedConfig, d: int, ev: _Eval, *, job: str,
    drop_update_of: str | None = None,
) -> tuple[FedResult, dict[str, Any]]:  # fmt: skip
    net = InMemoryNetwork([AGGREGATOR_NAME, *sorted(clients)], job_id=job, seed=cfg.seed)
    if drop_update_of is not None:  # lose this client's first update on the wire
        net.faults.drop(sender=drop_update_of, topic="fl/update", count=1)
    start = time.perf_counter()
    res = simulate(clients, cfg, np.zeros(d + 1), evaluate=ev, network=net)
    total = time.perf_counter() - start
    wire = sum(len(e) + len(p) for e, p in net.wire)
    aucs = [h.metrics["test_auc"] for h in res.history]
    return res, {
        "test_auc": aucs[-1],
        "test_auc_mean_last5": float(np.mean(aucs[-5:])),
        "rounds": len(res.history),
        "seconds_per_round": float(np.mean([h.seconds for h in res.history])),
        "wall_seconds": total,
        "wire_bytes_per_round": wire / max(1, len(res.history)),
    }


def _homo(args: argparse.Namespace, dfs: dict[str, pd.DataFrame], feats: list[str], ev: _Eval,
          central: float) -> dict[str, Any]:  # fmt: skip
    clients: dict[str, Participant] = {
        k: FedClient(dfs[k][feats].to_numpy(), dfs[k]["y"].to_numpy(),
                     model_factory=logistic_factory(), val_fraction=0.0, seed=i)
        for i, k in enumerate(_HOMO)
    }  # fmt: skip
    cfg = FedConfig(rounds=args.rounds, local=LocalTraining(epochs=1, learning_rate=0.1),
                    seed=args.seed)  # fmt: skip
    res, out = _run(clients, cfg, len(feats), ev, job="bench-homo")
    assert res.profile is not None
    secure_cfg = dataclasses.replace(cfg, secure_aggregation=True)

    def homo_clients() -> dict[str, Participant]:
        return {
            k: FedClient(dfs[k][feats].to_numpy(), dfs[k]["y"].to_numpy(),
                         model_factory=logistic_factory(), val_fraction=0.0, seed=i)
            for i, k in enumerate(_HOMO)
        }  # fmt: skip

    _, sec = _run(homo_clients(), secure_cfg, len(feats), ev, job="bench-homo-secagg")
    dropped_cfg = dataclasses.replace(secure_cfg, round_timeout=5.0)
    dres, dsec = _run(homo_clients(), dropped_cfg, len(feats), ev, job="bench-homo-secagg-drop",
                      drop_update_of="host_2")  # fmt: skip
    out["secure_aggregation"] = {
        "test_auc": sec["test_auc"],
        "seconds_per_round": sec["seconds_per_round"],
        "wire_bytes_per_round": sec["wire_bytes_per_round"],
        "time_ratio_vs_plain": sec["seconds_per_round"] / out["seconds_per_round"],
        "dropout_recovery": {
            "dropped": "host_2's masked update of round 1 lost on the wire (round_timeout 5 s)",
            "round_1": dres.history[0].to_json(),
            "rounds_skipped": sum(h.skipped for h in dres.history),
            "test_auc": dsec["test_auc"],
        },
    }
    out["auc_gap_vs_centralised"] = central - out["test_auc"]
    out["within_0.01"] = abs(out["auc_gap_vs_centralised"]) <= 0.01
    out["heterogeneity"] = {
        "label_chi_square": res.profile["label_chi_square"],
        "feature_ks_max": res.profile["feature_ks_max"],
    }
    return out


def _dirichlet(args: argparse.Namespace, x: np.ndarray, y: np.ndarray, ev: _Eval) -> dict[str, Any]:
    parts = dirichlet_split(y, n_clients=args.clients, alpha=args.alpha, seed=args.seed)

    def clients() -> dict[str, Participant]:
        return {
            f"c{i:02d}": FedClient(x[p], y[p], model_factory=logistic_factory(), seed=i)
            for i, p in enumerate(parts)
        }

    out: dict[str, Any] = {"client_sizes": [int(p.size) for p in parts],
                           "client_positive_rate": [float(y[p].mean()) for p in parts]}  # fmt: skip
    for label, local in (("lr0.1_e5", LocalTraining(epochs=5, learning_rate=0.1)),
                         ("lr1.0_e5", LocalTraining(epochs=5, learning_rate=1.0))):  # fmt: skip
        runs: dict[str, Any] = {}
        for mu in [0.0, *args.mu]:
            cfg = FedConfig(
                rounds=args.rounds,
                local=LocalTraining(epochs=local.epochs, learning_rate=local.learning_rate, mu=mu),
                personalise_epochs=1,
                personalise_learning_rate=0.01,
                seed=args.seed,
            )
            res, summary = _run(clients(), cfg, x.shape[1], ev, job=f"bench-dir-{label}-{mu}")
            summary["mean_client_auc_global"] = res.mean_report("auc_global")
            summary["mean_client_auc_personalised"] = res.mean_report("auc_personalised")
            runs["fedavg" if mu == 0 else f"fedprox_mu{mu:g}"] = summary
        best = max((k for k in runs if k != "fedavg"), key=lambda k: runs[k]["test_auc_mean_last5"])
        runs["best_fedprox"] = best
        runs["fedprox_ge_fedavg_last5"] = (
            runs[best]["test_auc_mean_last5"] >= runs["fedavg"]["test_auc_mean_last5"]
        )
        fa = runs["fedavg"]
        runs["personalisation_gain"] = (
            fa["mean_client_auc_personalised"] - fa["mean_client_auc_global"]
        )
        out[label] = runs
    return out


def _byzantine(args: argparse.Namespace, x: np.ndarray, y: np.ndarray, ev: _Eval) -> dict[str, Any]:
    parts = np.array_split(np.random.default_rng(args.seed).permutation(y.size), args.clients)

    def clients(attack: Attack | None) -> dict[str, Participant]:
        out: dict[str, Participant] = {
            f"c{i:02d}": FedClient(x[p], y[p], model_factory=logistic_factory(), seed=i)
            for i, p in enumerate(parts)
        }
        if attack is not None:
            for i in range(2):
                name = f"c{i:02d}"
                honest = out[name]
                assert isinstance(honest, FedClient)
                out[name] = ByzantineClient(honest, attack, n_clients=args.clients, n_byzantine=2,
                                            seed=i)  # fmt: skip
        return out

    result: dict[str, Any] = {"byzantine": 2, "robust_aggregator": DEFAULT_ROBUST}
    for agg in ("fedavg", DEFAULT_ROBUST):
        cfg = FedConfig(rounds=args.rounds, aggregator=agg, seed=args.seed,
                        local=LocalTraining(epochs=1, learning_rate=0.1))  # fmt: skip
        clean = _run(clients(None), cfg, x.shape[1], ev, job=f"bench-byz-{agg}-clean")[1]
        row: dict[str, Any] = {"clean_test_auc": clean["test_auc"]}
        for attack in Attack:
            res, s = _run(clients(attack), cfg, x.shape[1], ev, job=f"bench-byz-{agg}-{attack}")
            row[attack.value] = {
                "test_auc": s["test_auc"],
                "drop_vs_clean": clean["test_auc"] - s["test_auc"],
                "flagged_last_round": list(res.history[-1].flagged),
            }
        result[agg] = row
    robust = result[DEFAULT_ROBUST]
    result["robust_within_0.02_of_clean"] = all(
        robust[a.value]["drop_vs_clean"] <= 0.02 for a in Attack
    )
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _grpc(args: argparse.Namespace, union: pd.DataFrame, test: pd.DataFrame) -> dict[str, Any]:
    from protocols.pki import init_federation

    crash_client, crash_round = "c03", 5
    parts = np.array_split(np.random.default_rng(args.seed).permutation(len(union)), args.clients)
    clients = [f"c{i:02d}" for i in range(args.clients)]
    names = ["aggregator", *clients]
    with tempfile.TemporaryDirectory(prefix="vfl-bench-fedavg-") as tmp:
        root = Path(tmp)
        config = init_federation(
            names, root / "fed", addresses={n: f"127.0.0.1:{_free_port()}" for n in names}
        )
        for c, idx in zip(clients, parts, strict=True):
            union.iloc[idx].to_csv(root / f"{c}.csv", index=False)
        test.to_csv(root / "test.csv", index=False)
        env = dict(os.environ, GRPC_VERBOSITY="ERROR")
        common = ["--config", str(config), "--job", "bench-fedavg-grpc", "--round-timeout", "20"]

        def spawn(party: str, *extra: str) -> subprocess.Popen[str]:
            cmd = [sys.executable, "-m", "vfl.cli._fedavg_party", "--party", party, *common,
                   *extra]  # fmt: skip
            return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True)  # fmt: skip

        start = time.perf_counter()
        procs = {
            c: spawn(c, "--role", "client", "--data", str(root / f"{c}.csv"),
                     *(["--inject-crash-at-round", str(crash_round)] if c == crash_client else []))
            for c in clients
        }  # fmt: skip
        procs["aggregator"] = spawn(
            "aggregator", "--role", "aggregator", "--data", str(root / "test.csv"),
            "--clients", ",".join(clients), "--rounds", str(args.rounds),
        )  # fmt: skip
        try:
            stdout, _ = procs["aggregator"].communicate(timeout=900)
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.wait(timeout=60)
        wall = time.perf_counter() - start
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        return {"ok": False, "error": "the aggregator printed no result"}
    res: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    if not res.get("ok"):
        return res
    rounds = res["rounds"]
    return {
        "processes": len(names),
        "transport": "gRPC, mutual TLS 1.3, signed envelopes, 127.0.0.1",
        "rounds_completed": len(rounds),
        "test_auc": res["test_auc"],
        "seconds_per_round": float(np.mean([r["seconds"] for r in rounds])),
        "wall_seconds_including_start_up": wall,
        "payload_bytes_per_round": float(
            np.mean([r["bytes_down"] + r["bytes_up"] for r in rounds])
        ),
        "killed": {"client": crash_client, "at_round": crash_round},
        "crash_round_record": rounds[crash_round - 1],
        "crash_events": [e for e in res["events"] if e.get("client") == crash_client],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    dfs, feats = _load(args.data_dir)
    union = pd.concat([dfs[k] for k in _HOMO], ignore_index=True)
    x, y = union[feats].to_numpy(np.float64), union["y"].to_numpy(np.float64)
    ev = _Eval(dfs["test"][feats].to_numpy(np.float64), dfs["test"]["y"].to_numpy(np.float64))
    start = time.perf_counter()
    base = LogisticRegression(max_iter=2000).fit(x, y)
    central = auc(ev.y, base.predict_proba(ev.x)[:, 1])
    out: dict[str, Any] = {
        "benchmark": "fedavg",
        "machine": machine_info(),
        "baseline": "centralised logistic regression on the union (scikit-learn lbfgs)",
        "baseline_test_auc": central,
        "baseline_seconds": time.perf_counter() - start,
        "rounds": args.rounds,
        "note": "in-memory transport (signed envelopes), one thread per party",
    }
    if "homo" in args.parts:
        out["homo"] = _homo(args, dfs, feats, ev, central)
        out["ratio_fedavg_auc_to_centralised"] = out["homo"]["test_auc"] / central
    if "dirichlet" in args.parts:
        out["dirichlet"] = _dirichlet(args, x, y, ev)
    if "byzantine" in args.parts:
        out["byzantine"] = _byzantine(args, x, y, ev)
    if "grpc" in args.parts:
        out["grpc"] = _grpc(args, union, dfs["test"])
    return out
