"""Split NN end to end over the in-memory transport: training, inference, defence, attack meter,
checkpoints and resume, config errors."""

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
from vfl.errors import ConfigError, VflError
from vfl.split_nn import (
    CryptoConfig,
    DefenceConfig,
    Scheme,
    SplitNNConfig,
    SplitNNFeatureParty,
    SplitNNLabelParty,
    attack_scores,
    build_mlp,
    defend,
    leak_auc,
    leak_auc_bound,
)

torch.set_num_threads(1)


def credit(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = read_fate("default_credit_hetero_guest.csv", nrows=rows).drop(columns="id")
    h = read_fate("default_credit_hetero_host.csv", nrows=rows).drop(columns="id")
    return g, h


def config(scheme: Scheme = Scheme.PLAIN, **kw: Any) -> SplitNNConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crypto = CryptoConfig(scheme=scheme, key_bits=1024, insecure_allow_small_keys=True)
    base: dict[str, Any] = {"epochs": 1, "batch_size": 64, "interactive_units": 4, "crypto": crypto}
    base.update(kw)
    return SplitNNConfig(**base)


def parties(
    cfg: SplitNNConfig, splits: dict[str, list[str]], *, ckpt: Path | None = None
) -> tuple[SplitNNLabelParty, dict[str, SplitNNFeatureParty]]:
    torch.manual_seed(0)
    label = SplitNNLabelParty(
        nn.Sequential(nn.ReLU(), nn.Linear(cfg.interactive_units, 1)),
        bottom=build_mlp([13, 8, 4]),
        config=cfg,
        feature_parties=list(splits),
        checkpoint_dir=None if ckpt is None else ckpt / "bank",
        rng=SeededRandom(1),
    )
    features = {
        name: SplitNNFeatureParty(
            build_mlp([len(cols), 8, 4]),
            config=cfg,
            label_party="bank",
            feature_columns=cols,
            checkpoint_dir=None if ckpt is None else ckpt / name,
            rng=SeededRandom(2),
        )
        for name, cols in splits.items()
    }
    return label, features


def run(
    label: SplitNNLabelParty,
    features: dict[str, SplitNNFeatureParty],
    method: str,
    g: pd.DataFrame,
    h: pd.DataFrame,
) -> Any:
    net = InMemoryNetwork(["bank", *features], job_id="snn", seed=0)
    fns: dict[str, Any] = {"bank": lambda ch: getattr(label, method)(g, channel=ch)}
    for name, party in features.items():
        fns[name] = lambda ch, p=party: getattr(p, method)(h, channel=ch)
    return run_parties(fns, network=net, timeout=600)["bank"]


ONE = {"retailer": [f"x{i}" for i in range(10)]}
TWO = {"retailer": [f"x{i}" for i in range(5)], "telco": [f"x{i}" for i in range(5, 10)]}


@pytest.mark.slow
def test_two_feature_parties_train_and_predict() -> None:
    g, h = credit(900)
    cfg = config(epochs=2, learning_rate=0.02)
    label, features = parties(cfg, TWO)
    run(label, features, "fit", g.iloc[:600], h.iloc[:600])
    assert [r["epoch"] for r in label.history] == [1, 2]
    metrics = run(label, features, "evaluate", g.iloc[600:], h.iloc[600:])
    assert metrics["test_auc"] > 0.6
    proba = run(label, features, "predict_proba", g.iloc[600:], h.iloc[600:])
    assert proba.shape == (300,) and np.all((proba >= 0) & (proba <= 1))
    assert {"leak_auc_norm", "leak_auc_direction", "leak_auc_bound"} <= set(label.privacy)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:INSECURE")
@pytest.mark.parametrize(
    ("scheme", "rows", "tol"), [(Scheme.CKKS, 300, 1e-3), (Scheme.PAILLIER, 96, 1e-5)]
)
def test_secure_fit_matches_plain_fit(scheme: Scheme, rows: int, tol: float) -> None:
    g, h = credit(rows + 100)
    out = {}
    for s in (Scheme.PLAIN, scheme):
        cfg = config(s, seed=3, batch_size=32, defence=DefenceConfig(noise_multiplier=0.0))
        label, features = parties(cfg, ONE)
        run(label, features, "fit", g.iloc[:rows], h.iloc[:rows])
        out[s] = run(label, features, "predict_proba", g.iloc[rows:], h.iloc[rows:])
    # Same seeds, so the same initial models and W_H; the masks cancel, only rounding differs:
    # the secure run trains the same model as the plaintext one (and so reaches its AUC).
    np.testing.assert_allclose(out[Scheme.PLAIN], out[scheme], atol=tol)


def test_checkpoint_resume(tmp_path: Path) -> None:
    g, h = credit(300)
    label, features = parties(config(epochs=1), ONE, ckpt=tmp_path)
    run(label, features, "fit", g, h)
    assert sorted(p.name for p in (tmp_path / "bank").iterdir()) == ["epoch-0000.pt"]
    # "Crash" and restart with a longer plan: both resume after epoch 1 from their own files.
    label, features = parties(config(epochs=2), ONE, ckpt=tmp_path)
    run(label, features, "fit", g, h)
    assert [r["epoch"] for r in label.history] == [1, 2]
    assert sorted(p.name for p in (tmp_path / "retailer").iterdir()) == [
        "epoch-0000.pt",
        "epoch-0001.pt",
    ]


def test_early_stopping_on_validation_loss() -> None:
    g, h = credit(300)
    # Rates so small that the validation loss cannot improve after the first epoch.
    cfg = config(epochs=6, patience=1, learning_rate=1e-12, interactive_lr=1e-12)
    label, features = parties(cfg, ONE)
    run(label, features, "fit", g, h)
    assert [r["epoch"] for r in label.history] == [1, 2]
    assert "val_auc" in label.history[0]


def test_mismatched_config_fails_fast() -> None:
    g, h = credit(100)
    label, _ = parties(config(epochs=1), ONE)
    _, features = parties(config(epochs=2), ONE)
    with pytest.raises(VflError, match="disagrees on config"):
        run(label, features, "fit", g, h)


def test_defence_clips_and_noises() -> None:
    delta = np.vstack([np.full((4, 3), 10.0), np.zeros((4, 3))]) / 8
    off = defend(delta, config=DefenceConfig(noise_multiplier=0.0))
    assert off is delta
    cfg = DefenceConfig(noise_multiplier=1e-9, clip=0.5)
    clipped = defend(delta, config=cfg) * 8
    np.testing.assert_allclose(np.linalg.norm(clipped[:4], axis=1), 0.5, rtol=1e-6)
    noisy = defend(np.zeros((4000, 2)), config=DefenceConfig(noise_multiplier=2.0, clip=0.5)) * 4000
    assert abs(noisy.std() - 1.0) < 0.05


def test_leak_auc_bound() -> None:
    assert leak_auc_bound(noise_multiplier=0.0, releases=1) == 1.0
    assert leak_auc_bound(noise_multiplier=10.0, releases=2) == pytest.approx(0.5793, abs=1e-4)
    assert leak_auc_bound(noise_multiplier=100.0, releases=1) < 0.52


def test_attacks_read_undefended_gradients() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.3).astype(np.int64)
    direction = rng.normal(size=4)
    # Positives: large gradients along +direction; negatives: small ones along -direction.
    grad = np.where(y[:, None] == 1, 1.0, -0.2) * direction + 0.01 * rng.normal(size=(200, 4))
    norm_s, dir_s = attack_scores(grad)
    assert (leak_auc([y], [norm_s]) or 0.0) > 0.95
    assert (leak_auc([y], [dir_s]) or 0.0) > 0.95
    noise = rng.normal(size=(200, 4))
    norm_n, dir_n = attack_scores(noise)
    assert (leak_auc([y], [norm_n]) or 1.0) < 0.65
    assert leak_auc([y[:1]], [dir_n[:1]]) is None


def test_config_from_mapping() -> None:
    cfg = SplitNNConfig.from_mapping(
        {"epochs": 3, "defence_noise": 2.0, "bottom_layers": [8]}, {"scheme": "ckks"}
    )
    assert cfg.epochs == 3 and cfg.defence.noise_multiplier == 2.0
    assert cfg.crypto.scheme is Scheme.CKKS
    with pytest.raises(ConfigError, match="model.nope"):
        SplitNNConfig.from_mapping({"nope": 1})
    with pytest.raises(ConfigError, match="model.epochs"):
        SplitNNConfig.from_mapping({"epochs": "3"})
    with pytest.raises(ConfigError, match="crypto.scheme"):
        SplitNNConfig.from_mapping({}, {"scheme": "rot13"})
    with pytest.warns(UserWarning, match="NOT"):
        CryptoConfig(scheme=Scheme.PLAIN)
