"""``run_split_nn_job`` (the ``split_nn`` job type's entry point) and saving each party's part."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.errors import ConfigError
from vfl.split_nn import (
    SplitNNFeatureParty,
    SplitNNLabelParty,
    build_mlp,
    parse_split_nn_model,
    run_split_nn_job,
    top_model,
)

torch.set_num_threads(1)


def vehicle() -> tuple[pd.DataFrame, pd.DataFrame]:
    g = read_fate("vehicle_scale_hetero_guest.csv").drop(columns="id")
    h = read_fate("vehicle_scale_hetero_host.csv").drop(columns="id")
    return g, h


def test_parse_model_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="model.bottom_layers"):
        parse_split_nn_model({"bottom_layers": [0]}, scheme="ckks", key_bits=2048)
    with pytest.raises(ConfigError, match="model.embedding_dim"):
        parse_split_nn_model({"embedding_dim": "8"}, scheme="ckks", key_bits=2048)
    with pytest.raises(ConfigError, match="crypto.scheme"):
        parse_split_nn_model({}, scheme="rsa", key_bits=2048)
    model = parse_split_nn_model({"top_layers": [4], "epochs": 2}, scheme="ckks", key_bits=2048)
    assert model.top_layers == (4,) and model.config.epochs == 2


@pytest.mark.slow
def test_multiclass_job_and_saved_parts(tmp_path: Path) -> None:
    g, h = vehicle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = parse_split_nn_model(
            {
                "epochs": 6,
                "batch_size": 64,
                "learning_rate": 0.02,
                "validation_fraction": 0.0,
                "defence_noise": 0.0,
            },
            scheme="plain",
            key_bits=2048,
        )
    train_g, test_g, train_h, test_h = g.iloc[:600], g.iloc[600:], h.iloc[:600], h.iloc[600:]
    net = InMemoryNetwork(["bank", "retailer"], job_id="job", seed=0)

    def side(name: str, train: pd.DataFrame, test: pd.DataFrame) -> Any:
        return lambda ch: run_split_nn_job(
            model=model,
            party=name,
            label_party="bank",
            feature_parties=["retailer"],
            train=train,
            test=test,
            channel=ch,
            run_dir=tmp_path / name,
        )

    out = run_parties(
        {"bank": side("bank", train_g, test_g), "retailer": side("retailer", train_h, test_h)},
        network=net,
        timeout=300,
    )
    bank = out["bank"]
    assert bank["metrics"]["test_accuracy"] > 0.4  # 4 classes: chance is about 0.25
    assert len(bank["history"]) == 6 and "leak_auc_bound" in bank["privacy"]
    assert "metrics" not in out["retailer"]
    # Each party reloads only its own part and they predict together again.
    cfg = model.config
    label = SplitNNLabelParty(
        top_model(cfg.interactive_units, (), 4),
        config=cfg,
        feature_parties=["retailer"],
        bottom=build_mlp([9, 16, 8]),
    ).load(bank["model_path"], n_features=9)
    feature = SplitNNFeatureParty(build_mlp([9, 16, 8]), config=cfg, label_party="bank").load(
        out["retailer"]["model_path"]
    )
    net2 = InMemoryNetwork(["bank", "retailer"], job_id="job2", seed=1)
    again = run_parties(
        {
            "bank": lambda ch: label.evaluate(test_g, channel=ch),
            "retailer": lambda ch: feature.evaluate(test_h, channel=ch),
        },
        network=net2,
        timeout=300,
    )["bank"]
    assert again["test_accuracy"] == pytest.approx(bank["metrics"]["test_accuracy"], abs=0.01)
    assert not any(p.suffix == ".pt" and "epoch" in p.name for p in tmp_path.iterdir())
    assert np.all(np.isfinite(list(bank["metrics"].values())))
