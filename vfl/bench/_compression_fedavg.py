"""The FedAvg part of ``vfl bench compression``: compressed updates in real FedAvg runs.

Shared ``default_credit_homo`` files: guest, host_1 and host_2 as three clients, ``homo_test`` as
the aggregator's test set; a ReLU MLP (``--hidden``, float32 parameters) trained with FedAvg over
the in-memory transport (signed envelopes); also with secure aggregation, uncompressed (64-bit
ring) and ``q8`` (8-bit ring after the first round). Baseline: the same run with uncompressed updates
(float32 arrays), measured in the same invocation. Each compressed run gets
``ceil(1.3 * rounds)`` rounds so "reaches the uncompressed final AUC within 30 % more rounds"
can be read off its AUC curve.

Bytes are the round records' ``bytes_up``: the ``struct``-encoded ``fl/update`` payloads the
aggregator received (what crossed the channel; each signed envelope adds a fixed header per
message that compression does not change, reported apart as ``envelope_bytes_per_message``);
for secure runs they include every secure-aggregation message the aggregator received. Top-k runs
also report where a sparse payload's bytes go (:func:`vfl.compression.sparse_breakdown`: header,
bucket table, bits per kept entry of the positions and of the value codes next to the codes'
empirical entropy), averaged over every update and over the last round's.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protocols.memory import InMemoryNetwork
from vfl._datasets import fate_file
from vfl.compression import SparseArray, payload_nbytes, sparse_breakdown
from vfl.horizontal import (
    AGGREGATOR_NAME,
    CompressedUpdate,
    FedClient,
    FedConfig,
    FedResult,
    LocalTraining,
    Participant,
    simulate,
)
from vfl.metrics import auc

__all__ = ["RUNS", "run_fedavg_compression"]

_HOMO = ("guest", "host_1", "host_2")
RUNS: dict[str, tuple[str, bool]] = {
    "uncompressed": ("none", False),
    "q8": ("q8", False),
    "top10_ef": ("topk", False),
    "top10_ef_q8": ("topk+q8", False),
    "secure": ("none", True),
    "secure_q8": ("q8", True),
}
"""label -> (compression, secure_aggregation)."""


def _load(data_dir: Path) -> tuple[dict[str, pd.DataFrame], list[str]]:
    dfs = {
        k: pd.read_csv(fate_file(data_dir, f"default_credit_homo_{k}.csv"))
        for k in (*_HOMO, "test")
    }
    return dfs, [c for c in dfs["guest"].columns if c not in ("id", "y")]


def _mean_breakdown(payloads: list[SparseArray]) -> dict[str, float]:
    """The mean of :func:`sparse_breakdown` over every sparse update, and the bytes each
    ``fl/update`` message adds around the payload (the ``CompressedUpdate`` wrapper)."""
    rows = [sparse_breakdown(p) for p in payloads]
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["updates"] = len(rows)
    out["message_bytes"] = float(np.mean([payload_nbytes(p) for p in payloads]))
    return out


def _first_reaching(aucs: list[float], target: float) -> int | None:
    for i, a in enumerate(aucs, start=1):
        if a >= target:
            return i
    return None


def run_fedavg_compression(
    *, data_dir: Path, rounds: int, hidden: tuple[int, ...], keep: float, learning_rate: float,
    seed: int,
) -> dict[str, Any]:  # fmt: skip
    """Every run of :data:`RUNS`; ratios against the uncompressed run."""
    import torch

    from vfl.horizontal import mlp_factory

    torch.set_num_threads(1)
    dfs, feats = _load(data_dir)
    factory = mlp_factory(hidden=hidden, seed=seed)
    tx = dfs["test"][feats].to_numpy(np.float64)
    ty = dfs["test"]["y"].to_numpy(np.float64)
    model = factory(len(feats))

    def evaluate(params: np.ndarray) -> dict[str, float]:
        model.set_params(params)
        return {"test_auc": auc(ty, model.predict_proba(tx))}

    out: dict[str, Any] = {}
    for label, (compression, secure) in RUNS.items():
        clients: dict[str, Participant] = {
            k: FedClient(
                dfs[k][feats].to_numpy(),
                dfs[k]["y"].to_numpy(),
                model_factory=factory,
                val_fraction=0.0,
                seed=seed + i,
            )  # fmt: skip
            for i, k in enumerate(_HOMO)
        }
        n_rounds = rounds if label == "uncompressed" else math.ceil(1.3 * rounds)
        cfg = FedConfig(
            rounds=n_rounds, local=LocalTraining(epochs=1, learning_rate=learning_rate),
            compression=compression, compression_ratio=keep, seed=seed,
            secure_aggregation=secure,
        )  # fmt: skip
        net = InMemoryNetwork([AGGREGATOR_NAME, *_HOMO], job_id=f"bench-cmp-{label}", seed=seed)
        start = time.perf_counter()
        res: FedResult = simulate(clients, cfg, factory(len(feats)).get_params(),
                                  evaluate=evaluate, network=net)  # fmt: skip
        wall = time.perf_counter() - start
        updates = [(e, p) for e, p in net.wire if b"fl/update" in e]
        aucs = [h.metrics["test_auc"] for h in res.history]
        sparse = [
            m.payload.payload
            for m in net.transcript.on_topic("fl/update")
            if isinstance(m.payload, CompressedUpdate)
            and isinstance(m.payload.payload, SparseArray)
        ]
        out[label] = {
            "compression": compression,
            "secure_aggregation": secure,
            "rounds_run": n_rounds,
            "parameters": int(res.params.size),
            "bytes_up_per_round": float(np.mean([h.bytes_up for h in res.history])),
            "bytes_up_first_round": res.history[0].bytes_up,
            "bytes_up_last_round": res.history[-1].bytes_up,
            "bytes_up_curve": [h.bytes_up for h in res.history],
            "bytes_down_per_round": float(np.mean([h.bytes_down for h in res.history])),
            "envelope_bytes_per_message": float(np.mean([len(e) for e, _ in updates]))
            if updates
            else None,
            "test_auc_at_baseline_rounds": aucs[rounds - 1],
            "test_auc_final": aucs[-1],
            "auc_curve": [round(a, 5) for a in aucs],
            "wall_seconds": wall,
        }
        if sparse:
            out[label]["sparse_payload"] = _mean_breakdown(sparse)
            out[label]["sparse_payload_last_round"] = _mean_breakdown(sparse[-len(_HOMO) :])
    base = out["uncompressed"]
    target = base["test_auc_at_baseline_rounds"]
    for row in out.values():
        row["ratio_bytes_up_vs_uncompressed"] = (
            base["bytes_up_per_round"] / row["bytes_up_per_round"]
        )
        row["ratio_last_round_vs_uncompressed"] = (
            base["bytes_up_per_round"] / row["bytes_up_last_round"]
        )
        row["auc_gap_vs_uncompressed"] = target - row["test_auc_at_baseline_rounds"]
        reach = _first_reaching(row["auc_curve"], target)
        row["rounds_to_reach_uncompressed_final_auc"] = reach
        row["extra_rounds_fraction"] = None if reach is None else reach / rounds - 1.0
    out["checks"] = {
        "q8_ratio_ge_3.9": out["q8"]["ratio_bytes_up_vs_uncompressed"] >= 3.9,
        "q8_auc_within_0.005": abs(out["q8"]["auc_gap_vs_uncompressed"]) <= 0.005,
        "top10_ef_ratio_ge_8": out["top10_ef"]["ratio_bytes_up_vs_uncompressed"] >= 8.0,
        "top10_ef_q8_ratio_ge_30": out["top10_ef_q8"]["ratio_bytes_up_vs_uncompressed"] >= 30.0,
        **{
            f"{k}_reaches_within_30pct_more_rounds": out[k][
                "rounds_to_reach_uncompressed_final_auc"
            ]
            is not None
            and out[k]["rounds_to_reach_uncompressed_final_auc"] <= math.ceil(1.3 * rounds)
            for k in ("q8", "top10_ef", "top10_ef_q8", "secure_q8")
        },
        "secure_q8_auc_within_0.005": abs(out["secure_q8"]["auc_gap_vs_uncompressed"]) <= 0.005,
    }
    out["setup"] = {
        "data": "default_credit_homo guest/host_1/host_2 (clients), homo_test (aggregator)",
        "model": f"ReLU MLP {len(feats)}-{'-'.join(map(str, hidden))}-1, float32 parameters",
        "rounds_uncompressed": rounds,
        "local": {"epochs": 1, "learning_rate": learning_rate, "batch_size": 64},
        "keep_fraction": keep,
        "bytes": "bytes_up: struct-encoded fl/update payloads the aggregator received per round",
    }
    return out
