"""Benchmarks behind ``vfl bench``: each measures the engine next to a named baseline, same run.

Registry: name -> (module, one-line help). A module provides ``add_arguments(parser)`` and
``run(args) -> dict`` returning a JSON-ready dict that always includes ``machine`` (see
:func:`vfl.bench.common.machine_info`), the baseline's name, and the ratios.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS: dict[str, tuple[str, str]] = {
    "channel": ("vfl.bench.channel", "secure channel (mTLS+signing+chunks) vs plain gRPC, 1/64 MB"),
    "paillier": (
        "vfl.bench.paillier",
        "Paillier encrypt/decrypt/add/mul/X.T@enc vs python-paillier",
    ),
    "ckks": ("vfl.bench.ckks", "CKKS batch encrypt/matmul/serialise vs one-ciphertext-per-row"),
    "hetero-lr": (
        "vfl.bench.hetero_lr",
        "hetero LR: Paillier vs plaintext epoch time, AUC vs sklearn",
    ),
    "splitnn": (
        "vfl.bench.splitnn",
        "split NN: plain vs Paillier vs CKKS throughput, AUC vs centralised MLP, leak AUC",
    ),
    "secureboost": (
        "vfl.bench.secureboost",
        "SecureBoost: Paillier vs plain seconds per tree over gRPC, AUC vs XGBoost hist",
    ),
    "psi": ("vfl.bench.psi", "two-party ECDH-PSI as two OS processes vs openmined-psi, same ids"),
    "fedavg": ("vfl.bench.fedavg", "FedAvg/FedProx/robust aggregation, credit homo vs central LR"),
    "dp": ("vfl.bench.dp", "DP-SGD FedAvg at epsilon 3 and 1 vs non-private, credit homo AUC"),
    "compression": (
        "vfl.bench.compression",
        "update compressors, compressed FedAvg (plain and secure) and the exact DP sampler vs raw float32 / uncompressed / float noise",
    ),
}
