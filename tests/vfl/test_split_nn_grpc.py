"""Split NN with both parties as OS processes over mutual-TLS gRPC (the benchmark's runner)."""

from __future__ import annotations

import argparse

import pytest

from vfl.bench.splitnn import DATA, _grpc_run
from vfl.split_nn import Scheme


@pytest.mark.slow
@pytest.mark.grpc
def test_ckks_split_nn_two_processes() -> None:
    args = argparse.Namespace(data_dir=DATA, batch_size=256, key_bits=2048, seed=0)
    out = _grpc_run(args, Scheme.CKKS, defence=0.5, epochs=1, rows=512, test_rows=300)
    assert out["transport"].startswith("grpc")
    assert out["train_rows"] == 512 and out["test_rows"] == 300 and out["epochs"] == 1
    assert 0.0 <= out["test_auc"] <= 1.0
    assert out["bytes_sent"]["bank"] > 0 and out["bytes_sent"]["retailer"] > 0
    assert {"leak_auc_norm", "leak_auc_direction", "leak_auc_bound"} <= set(out["privacy"])
