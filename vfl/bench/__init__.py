"""Benchmarks behind ``vfl bench``: each measures the engine next to a named baseline, same run.

Registry: name -> (module, one-line help). A module provides ``add_arguments(parser)`` and
``run(args) -> dict`` returning a JSON-ready dict that always includes ``machine`` (see
:func:`vfl.bench.common.machine_info`), the baseline's name, and the ratios.
"""

from __future__ import annotations

__all__ = ["BENCHMARKS"]

BENCHMARKS: dict[str, tuple[str, str]] = {
    "paillier": ("vfl.bench.paillier", "Paillier encrypt/decrypt/add/mul/X.T@enc vs python-paillier"),
    "ckks": ("vfl.bench.ckks", "CKKS batch encrypt/matmul/serialise vs one-ciphertext-per-row"),
}
