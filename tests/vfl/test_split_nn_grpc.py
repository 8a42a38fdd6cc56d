"""Split NN with both parties as OS processes over mutual-TLS gRPC (the benchmark's runner)."""

from __future__ import annotations

from typing import Any

import pytest

from tests._data import FATE
from vfl.bench.splitnn import _grpc_run
from vfl.split_nn import Scheme


def spec(scheme: Scheme, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "data_dir": str(FATE),
        "dataset": "credit",
        "scheme": scheme.value,
        "key_bits": 2048,
        "processes": 0,
        "defence": 0.5,
        "epochs": 1,
        "batch_size": 256,
        "learning_rate": 0.01,
        "seed": 0,
        "rows": 512,
        "test_rows": 300,
    }
    return {**base, **kw}


@pytest.mark.slow
@pytest.mark.grpc
def test_ckks_split_nn_two_processes() -> None:
    out = _grpc_run(spec(Scheme.CKKS))
    assert out["transport"].startswith("grpc")
    assert out["train_rows"] == 512 and out["test_rows"] == 300 and out["epochs"] == 1
    assert 0.0 <= out["test_auc"] <= 1.0
    assert out["bytes_sent"]["bank"] > 0 and out["bytes_sent"]["retailer"] > 0
    assert {"leak_auc_norm", "leak_auc_direction", "leak_auc_bound"} <= set(out["privacy"])


@pytest.mark.slow
@pytest.mark.grpc
def test_packed_paillier_split_nn_two_processes() -> None:
    # 2048-bit keys, 17 values per ciphertext, two worker processes per party.
    out = _grpc_run(spec(Scheme.PAILLIER, rows=128, test_rows=64, batch_size=64, processes=2))
    assert out["scheme"] == "paillier" and out["train_rows"] == 128
    assert 0.0 <= out["test_auc"] <= 1.0 and out["samples_per_s"] > 0
