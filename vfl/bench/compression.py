"""``vfl bench compression``: payload compressors, compressed FedAvg, and the DP noise sampler,
each next to its baseline in the same run.

* Compressors (every one in :data:`vfl.compression.COMPRESSORS`) on a float32 update of
  ``--size`` normal values: bytes on the wire, ratio, encode/decode time and relative L2 error of
  one round; for top-k, where the sparse payload's bytes go (``sparse_breakdown``). Baseline:
  the raw float32 array through the ``struct`` codec (``ndarray`` body).
* FedAvg (``--parts fedavg``, :mod:`vfl.bench._compression_fedavg`): shared default-credit homo
  files, a float32 MLP, uncompressed vs q8 vs top-10 % with error feedback vs top-10 % + q8:
  bytes per round on the channel, ratio, test AUC, rounds to reach the uncompressed final AUC.
* DP noise: the exact discrete Gaussian sampler (integer arithmetic, OS CSPRNG) in samples per
  second. Baseline: numpy's floating-point ``normal`` (fast but exposed to the
  least-significant-bit attack), so the ratio is the price of the secure sampler.
* Accountant: time of one ``epsilon_for_plan`` and one ``noise_for_epsilon``.

Timings on a shared machine are disturbed by other load; byte counts and ratios are exact.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crypto.random import SystemRandom
from vfl._datasets import shared_data_dir
from vfl.bench._compression_fedavg import run_fedavg_compression
from vfl.bench.common import best_of, machine_info
from vfl.compression import (
    COMPRESSORS,
    SparseArray,
    decompress,
    make_compressor,
    payload_nbytes,
    sparse_breakdown,
)
from vfl.privacy import discrete_gaussian_array, epsilon_for_plan, noise_for_epsilon

__all__ = ["add_arguments", "run"]

BASELINE = (
    "uncompressed float32 ndarray through the struct codec; FedAvg with uncompressed updates; "
    "numpy float normal sampler"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=1_000_000, help="entries per update")
    parser.add_argument("--keep", type=float, default=0.1, help="top-k kept fraction")
    parser.add_argument("--dp-samples", type=int, default=20_000, help="noise samples to time")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic update")
    parser.add_argument(
        "--parts", nargs="+", default=["codecs", "fedavg", "dp"],
        choices=["codecs", "fedavg", "dp"],
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None, help="default-credit homo files")
    parser.add_argument("--rounds", type=int, default=20, help="FedAvg rounds (uncompressed)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[512], help="MLP hidden sizes")
    parser.add_argument("--lr", type=float, default=0.05, help="FedAvg local learning rate")


def _options(name: str, keep: float) -> dict[str, Any]:
    if name.startswith("topk"):
        return {"keep": keep}
    if name == "countsketch":
        return {"rows": 5, "width_fraction": 0.02}
    return {}


def _decoder(payload: Any) -> Callable[[], np.ndarray]:
    def decode() -> np.ndarray:
        return decompress(payload)

    return decode


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "compression", "machine": machine_info(),
                           "baseline": BASELINE}  # fmt: skip
    if "codecs" in args.parts:
        out.update(_codecs(args))
    if "fedavg" in args.parts:
        out["fedavg"] = run_fedavg_compression(
            data_dir=args.data_dir or shared_data_dir(), rounds=args.rounds,
            hidden=tuple(args.hidden), keep=args.keep, learning_rate=args.lr, seed=args.seed,
        )  # fmt: skip
    if "dp" in args.parts:
        out.update(_dp(args))
    return out


def _codecs(args: argparse.Namespace) -> dict[str, Any]:
    x = np.random.default_rng(args.seed).normal(size=args.size).astype(np.float32)
    baseline_bytes = payload_nbytes(x)
    baseline_encode = best_of(lambda: payload_nbytes(x))
    compressors: dict[str, Any] = {}
    for name in sorted(COMPRESSORS):
        options = _options(name, args.keep)
        comp = make_compressor(name, seed=args.seed, **options)
        start = time.perf_counter()
        payload = comp.compress(x)
        encode = time.perf_counter() - start
        decode = best_of(_decoder(payload))
        y = decompress(payload).astype(np.float64)
        stats = comp.stats[-1]
        compressors[name] = {
            "options": options,
            "payload_bytes": stats.payload_bytes,
            "ratio_vs_float32": stats.raw_bytes / stats.payload_bytes,
            "ratio_vs_baseline_payload": baseline_bytes / stats.payload_bytes,
            "encode_s": encode,
            "decode_s": decode,
            "relative_l2_error": float(np.linalg.norm(y - x) / np.linalg.norm(x)),
        }
        if isinstance(payload, SparseArray):
            compressors[name]["sparse_payload"] = sparse_breakdown(payload)
    return {
        "size": args.size,
        "baseline_payload_bytes": baseline_bytes,
        "baseline_encode_s": baseline_encode,
        "compressors": compressors,
    }


def _dp(args: argparse.Namespace) -> dict[str, Any]:
    n = args.dp_samples
    source = SystemRandom()
    exact = best_of(lambda: discrete_gaussian_array((n,), sigma_squared=float(2**40), rng=source))
    gen = np.random.default_rng()
    floating = best_of(lambda: gen.normal(0.0, 2.0**20, size=n))
    plan: dict[str, Any] = {"sampling_rate": 0.01, "steps": 1000, "delta": 1e-5}
    eps_time = best_of(lambda: epsilon_for_plan(noise_multiplier=1.1, **plan))
    start = time.perf_counter()
    z = noise_for_epsilon(epsilon=3.0, **plan)
    noise_time = time.perf_counter() - start
    return {
        "dp_sampler": {
            "exact_discrete_gaussian_per_s": n / exact,
            "numpy_float_normal_per_s": n / floating,
            "slowdown_vs_float": exact / floating,
        },
        "accountant": {
            "plan": plan,
            "epsilon_for_plan_s": eps_time,
            "noise_for_epsilon_s": noise_time,
            "noise_for_epsilon_3": z,
        },
    }
