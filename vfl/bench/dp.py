"""``vfl bench dp``: record-level DP-SGD in FedAvg on the shared default-credit homo files.

The three given silos (guest, host_1, host_2) are the clients, ``homo_test`` is the test set.
Baseline: the same FedAvg job without DP (same rounds, local epochs, learning rate, and a local
batch equal to DP-SGD's expected batch ``q * rows``), measured in the same run. Then DP-SGD in
every silo at each ``--epsilons`` (delta ``--delta``): Poisson-sampled batches, per-sample clipping
to ``--clip``, exact discrete Gaussian noise, the noise multiplier derived from the plan. Reported:
test AUC of each run, the gap to the baseline, the epsilon each client's accountant and the
aggregator's accountant report, per-round and in total, and the seconds per round; then the
first epsilon's plan run against two thirds of its budget with ``dp_budget_policy = "stop"``
(training must stop cleanly before overspending). With
``--central``, central DP at the aggregator (client-level, ``q = 1``) at the same epsilons.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols.memory import InMemoryNetwork
from vfl._datasets import fate_file, shared_data_dir
from vfl.bench.common import machine_info
from vfl.horizontal import (
    AGGREGATOR_NAME,
    ClientPrivacy,
    DpMode,
    DpSpec,
    FedClient,
    FedConfig,
    FedServer,
    LocalTraining,
    LogisticModel,
    Participant,
    logistic_factory,
    simulate,
)
from vfl.metrics import auc
from vfl.privacy import BudgetPolicy

__all__ = ["add_arguments", "run"]

_HOMO = ("guest", "host_1", "host_2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=shared_data_dir(), help="FATE files")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--local-epochs", type=int, default=1)
    parser.add_argument("--sampling-rate", type=float, default=0.01, help="Poisson rate q")
    parser.add_argument("--clip", type=float, default=1.0, help="per-sample clip norm C")
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[3.0, 1.0])
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--central", action="store_true", help="also central DP (client-level)")


def _load(data_dir: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    dfs = {
        k: pd.read_csv(fate_file(data_dir, f"default_credit_homo_{k}.csv"))
        for k in (*_HOMO, "test")
    }
    return dfs, [c for c in dfs["guest"].columns if c not in ("id", "y")]


def _clients(
    dfs: dict[str, pd.DataFrame], feats: list[str], privacy: dict[str, ClientPrivacy] | None
) -> dict[str, Participant]:
    return {
        k: FedClient(
            dfs[k][feats].to_numpy(np.float64), dfs[k]["y"].to_numpy(np.float64),
            model_factory=logistic_factory(), val_fraction=0.0, seed=i,
            privacy=None if privacy is None else privacy[k],
        )
        for i, k in enumerate(_HOMO)
    }  # fmt: skip


def _one(
    args: argparse.Namespace,
    dfs: dict[str, pd.DataFrame],
    feats: list[str],
    cfg: FedConfig,
    *,
    job: str,
) -> dict[str, Any]:
    tx = dfs["test"][feats].to_numpy(np.float64)
    ty = dfs["test"]["y"].to_numpy(np.float64)
    model = LogisticModel(len(feats))

    def evaluate(params: np.ndarray) -> dict[str, float]:
        model.set_params(params)
        return {"test_auc": auc(ty, model.predict_proba(tx))}

    dp = cfg.dp
    privacy = None
    if dp is not None and dp.mode is DpMode.RECORD:
        privacy = {
            k: ClientPrivacy(dp, party=k, rounds=cfg.rounds, local_epochs=cfg.local.epochs)
            for k in _HOMO
        }
    init = np.zeros(len(feats) + 1)
    server = FedServer(cfg, init, clients=list(_HOMO))
    net = InMemoryNetwork([AGGREGATOR_NAME, *_HOMO], job_id=job, seed=cfg.seed)
    start = time.perf_counter()
    res = simulate(_clients(dfs, feats, privacy), cfg, init, evaluate=evaluate, network=net,
                   server=server, job_id=job)  # fmt: skip
    wall = time.perf_counter() - start
    out: dict[str, Any] = {
        "test_auc": res.history[-1].metrics["test_auc"],
        "rounds": len(res.history),
        "seconds_per_round": wall / max(1, len(res.history)),
    }
    if server.privacy is not None:
        summary = server.privacy.summary()
        out["stopped_early"] = summary["stopped_early"]
        out["stop_reason"] = summary["stop_reason"]
        out["aggregator_accountant"] = {
            k: summary[k]
            for k in ("epsilon", "delta", "epsilon_per_round", "epsilon_cumulative",
                      "noise_multiplier", "sampling_rate", "steps_per_round", "planned_epsilon")
        }  # fmt: skip
    if privacy is not None:
        out["client_epsilon"] = {k: p.epsilon for k, p in privacy.items()}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    dfs, feats = _load(args.data_dir)
    rows = {k: len(dfs[k]) for k in _HOMO}
    batch = max(1, round(args.sampling_rate * min(rows.values())))
    local = LocalTraining(epochs=args.local_epochs, learning_rate=args.learning_rate,
                          batch_size=batch)  # fmt: skip
    base_cfg = FedConfig(rounds=args.rounds, local=local, seed=args.seed)
    start = time.perf_counter()
    baseline = _one(args, dfs, feats, base_cfg, job="bench-dp-baseline")
    out: dict[str, Any] = {
        "benchmark": "dp",
        "machine": machine_info(),
        "data": "default_credit_homo: guest, host_1, host_2 as silos; homo_test as test",
        "rows_per_silo": rows,
        "baseline": f"the same FedAvg without DP (local batch {batch}, same rounds and lr)",
        "baseline_test_auc": baseline["test_auc"],
        "baseline_seconds": time.perf_counter() - start,
        "settings": {
            "rounds": args.rounds,
            "local_epochs": args.local_epochs,
            "sampling_rate": args.sampling_rate,
            "clip_norm": args.clip,
            "learning_rate": args.learning_rate,
            "delta": args.delta,
            "model": "logistic regression",
            "noise": "exact discrete Gaussian (secure)",
        },  # fmt: skip
        "record": {},
        "note": "in-memory transport, one thread per party; timings taken under load",
    }
    for eps in args.epsilons:
        dp = DpSpec(mode=DpMode.RECORD, epsilon=eps, delta=args.delta,
                    max_grad_norm=args.clip, sampling_rate=args.sampling_rate)  # fmt: skip
        got = _one(args, dfs, feats, dataclasses.replace(base_cfg, dp=dp), job=f"bench-dp-{eps:g}")
        got["auc_gap_vs_non_private"] = baseline["test_auc"] - got["test_auc"]
        got["auc_ratio_vs_non_private"] = got["test_auc"] / baseline["test_auc"]
        got["within_0.02"] = got["auc_gap_vs_non_private"] <= 0.02
        out["record"][f"epsilon_{eps:g}"] = got
    first = out["record"][f"epsilon_{args.epsilons[0]:g}"]
    z = first["aggregator_accountant"]["noise_multiplier"]
    budget = args.epsilons[0] * 2 / 3
    dp = DpSpec(mode=DpMode.RECORD, epsilon=budget, noise_multiplier=z, delta=args.delta,
                max_grad_norm=args.clip, sampling_rate=args.sampling_rate,
                budget_policy=BudgetPolicy.STOP)  # fmt: skip
    stop = _one(args, dfs, feats, dataclasses.replace(base_cfg, dp=dp), job="bench-dp-stop")
    stop["setup"] = (
        f"the epsilon-{args.epsilons[0]:g} plan's noise multiplier with a budget of {budget:g} "
        f"and dp_budget_policy = 'stop'"
    )
    out["budget_stop"] = stop
    if args.central:
        out["central"] = {}
        for eps in args.epsilons:
            dp = DpSpec(mode=DpMode.CENTRAL, epsilon=eps, delta=args.delta, max_grad_norm=args.clip)
            got = _one(args, dfs, feats, dataclasses.replace(base_cfg, dp=dp),
                       job=f"bench-dp-central-{eps:g}")  # fmt: skip
            got["auc_gap_vs_non_private"] = baseline["test_auc"] - got["test_auc"]
            out["central"][f"epsilon_{eps:g}"] = got
    return out
