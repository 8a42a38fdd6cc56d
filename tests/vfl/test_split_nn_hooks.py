"""Split NN job hooks: the per-epoch callback at every party and label DP at the label party."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.errors import ConfigError
from vfl.split_nn import (
    SplitNNConfig,
    SplitNNFeatureParty,
    SplitNNLabelParty,
    build_mlp,
    parse_split_nn_model,
    run_split_nn_job,
)

torch.set_num_threads(1)


def credit(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = read_fate("default_credit_hetero_guest.csv", nrows=rows).drop(columns="id")
    h = read_fate("default_credit_hetero_host.csv", nrows=rows).drop(columns="id")
    return g, h


def job(model: dict[str, Any], tmp_path: Path, rows: int = 400) -> dict[str, Any]:
    g, h = credit(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = parse_split_nn_model(model, scheme="plain", key_bits=2048)
    events: dict[str, list[dict[str, Any]]] = {"bank": [], "retailer": []}
    cut = rows * 3 // 4

    def side(name: str, train: pd.DataFrame, test: pd.DataFrame) -> Any:
        return lambda ch: run_split_nn_job(
            model=parsed,
            party=name,
            label_party="bank",
            feature_parties=["retailer"],
            train=train,
            test=test,
            channel=ch,
            run_dir=tmp_path / name,
            rng=SeededRandom(7 if name == "bank" else 8),
            on_epoch=events[name].append,
        )

    out = run_parties(
        {
            "bank": side("bank", g.iloc[:cut], g.iloc[cut:]),
            "retailer": side("retailer", h.iloc[:cut], h.iloc[cut:]),
        },
        network=InMemoryNetwork(["bank", "retailer"], job_id="hooks", seed=0),
        timeout=300,
    )
    return {"out": out, "events": events}


def test_on_epoch_reports_every_epoch_at_every_party(tmp_path: Path) -> None:
    res = job({"epochs": 3, "batch_size": 64, "validation_fraction": 0.2, "patience": 5}, tmp_path)
    bank, retailer = res["events"]["bank"], res["events"]["retailer"]
    assert [e["round"] for e in bank] == [1, 2, 3]
    assert [e["round"] for e in retailer] == [1, 2, 3]
    for event in bank:
        assert set(event) == {"round", "metrics", "seconds"}
        assert set(event["metrics"]) == {"loss", "val_auc", "val_accuracy"}
        assert event["seconds"] > 0 and np.isfinite(event["metrics"]["loss"])
    history = res["out"]["bank"]["history"]
    assert [e["metrics"]["loss"] for e in bank] == [r["train_loss"] for r in history]
    assert all(e["metrics"] == {} and e["seconds"] > 0 for e in retailer)


def test_label_dp_trains_on_randomised_labels_and_reports_epsilon(tmp_path: Path) -> None:
    # epsilon = 0.01: a label survives with probability 1 / (1 + e^-0.01) ~ 0.5, so the training
    # labels are coin flips (loss near ln 2 = 0.69; about 0.5 on the true labels, 22% positive)
    # and everything the retailer receives is 0.01-label-DP.
    noisy = job({"epochs": 2, "batch_size": 64, "label_dp_epsilon": 0.01}, tmp_path / "a")
    assert noisy["out"]["bank"]["privacy"]["label_dp_epsilon"] == 0.01
    assert "privacy" not in noisy["out"]["retailer"]
    assert noisy["out"]["bank"]["history"][-1]["train_loss"] > 0.64
    clean = job({"epochs": 2, "batch_size": 64}, tmp_path / "b")
    assert clean["out"]["bank"]["privacy"]["label_dp_epsilon"] is None
    assert clean["out"]["bank"]["history"][-1]["train_loss"] < 0.6


def fit_party(epsilon: float, *, epochs: int = 1, ckpt: Path | None = None) -> SplitNNLabelParty:
    g, h = credit(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = SplitNNConfig.from_mapping(
            {"epochs": epochs, "batch_size": 100, "label_dp_epsilon": epsilon},
            {"scheme": "plain"},
        )
    label = SplitNNLabelParty(
        nn.Sequential(nn.ReLU(), nn.Linear(cfg.interactive_units, 1)),
        config=cfg,
        feature_parties=["retailer"],
        checkpoint_dir=None if ckpt is None else ckpt / "bank",
        rng=SeededRandom(3),
    )
    feature = SplitNNFeatureParty(
        build_mlp([10, 4]),
        config=cfg,
        label_party="bank",
        checkpoint_dir=None if ckpt is None else ckpt / "retailer",
        rng=SeededRandom(4),
    )
    run_parties(
        {
            "bank": lambda ch: label.fit(g, channel=ch),
            "retailer": lambda ch: feature.fit(h, channel=ch),
        },
        network=InMemoryNetwork(["bank", "retailer"], job_id="rr", seed=0),
        timeout=120,
    )
    return label


def test_randomised_response_rate_and_resume(tmp_path: Path) -> None:
    y = credit(300)[0]["y"].to_numpy()
    kept = fit_party(1.0)._rr_labels
    assert kept is not None and kept.shape == y.shape
    # Binary randomised response keeps a label with probability e / (1 + e) ~ 0.73.
    assert 0.6 < float(np.mean(kept == y)) < 0.85
    assert np.all(fit_party(50.0)._rr_labels == y)
    # A resumed job reuses the labels drawn before the crash: each label is released once.
    first = fit_party(1.0, ckpt=tmp_path)._rr_labels
    resumed = fit_party(1.0, epochs=2, ckpt=tmp_path)
    assert [r["epoch"] for r in resumed.history] == [1, 2]
    assert first is not None and resumed._rr_labels is not None
    assert np.array_equal(resumed._rr_labels, first)


def test_label_dp_epsilon_is_validated() -> None:
    with pytest.raises(ConfigError, match="model.label_dp_epsilon"):
        SplitNNConfig.from_mapping({"label_dp_epsilon": 0})
    with pytest.raises(ConfigError, match="model.label_dp_epsilon"):
        SplitNNConfig.from_mapping({"label_dp_epsilon": "1"})
