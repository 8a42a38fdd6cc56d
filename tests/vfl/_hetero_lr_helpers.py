"""Shared fixtures for the hetero LR tests: data, a plaintext reference, a runner."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from vfl.hetero_lr import HeteroLRConfig, HeteroLRFeatureParty, HeteroLRLabelParty, _math


def breast(rows: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    if rows is not None:
        g, h = g.iloc[:rows].reset_index(drop=True), h.iloc[:rows].reset_index(drop=True)
    return g, h


def run(
    cfg: HeteroLRConfig,
    label_df: pd.DataFrame,
    feature_dfs: dict[str, pd.DataFrame],
    *,
    seed: int = 0,
    timeout: float = 300.0,
) -> tuple[HeteroLRLabelParty, dict[str, HeteroLRFeatureParty], dict[str, Any], InMemoryNetwork]:
    """Fit and evaluate on the training rows; returns the models, results and the network."""
    net = InMemoryNetwork(["bank", *feature_dfs], job_id="hetero-lr-test", seed=seed)
    label = HeteroLRLabelParty(cfg, id_column="id")
    features = {name: HeteroLRFeatureParty(cfg, id_column="id") for name in feature_dfs}

    def bank(ch: Any) -> Any:
        return label.fit(label_df, channel=ch).evaluate(label_df, channel=ch)

    def make(name: str) -> Any:
        def fn(ch: Any) -> Any:
            return (
                features[name]
                .fit(feature_dfs[name], channel=ch, label_party="bank")
                .evaluate(feature_dfs[name], channel=ch)
            )

        return fn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        results = run_parties(
            {"bank": bank, **{n: make(n) for n in feature_dfs}}, network=net, timeout=timeout
        )
    return label, features, results, net


def reference(
    cfg: HeteroLRConfig, label_df: pd.DataFrame, feature_dfs: dict[str, pd.DataFrame]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The same training computed centrally in plaintext (no validation split)."""
    assert cfg.validation_fraction == 0.0

    def std(x: np.ndarray) -> np.ndarray:
        mean, sd = _math.standardise_fit(x)
        return np.asarray((x - mean) / sd, dtype=np.float64)

    xg = std(label_df.drop(columns=["id", "y"]).to_numpy(dtype=float))
    if cfg.fit_intercept:
        xg = np.hstack([np.ones((xg.shape[0], 1)), xg])
    xh = {
        n: std(df.drop(columns=["id"]).to_numpy(dtype=float))
        for n, df in sorted(feature_dfs.items())
    }
    y = label_df["y"].to_numpy(dtype=float)
    weight = _math.balanced_weights(y) if cfg.class_weight.value == "balanced" else np.ones(y.size)
    wg = np.zeros(xg.shape[1])
    wh = {n: np.zeros(x.shape[1]) for n, x in xh.items()}
    for epoch in range(cfg.epochs):
        lr = _math.learning_rate(
            cfg.learning_rate, schedule=cfg.lr_schedule, decay=cfg.lr_decay, epoch=epoch
        )
        for idx in _math.batches(y.size, batch_size=cfg.batch_size, seed=cfg.seed, epoch=epoch):
            u_h = sum(x[idx] @ wh[n] for n, x in xh.items())
            alpha, beta = _math.linearise(
                xg[idx] @ wg, y[idx], weight[idx], approximation=cfg.approximation
            )
            d = alpha + beta * u_h
            m = idx.size
            wg = _math.apply_penalty(
                wg,
                xg[idx].T @ d / m,
                lr=lr,
                penalty=cfg.penalty,
                alpha=cfg.alpha,
                free=1 if cfg.fit_intercept else 0,
            )
            for n, x in xh.items():
                wh[n] = _math.apply_penalty(
                    wh[n], x[idx].T @ d / m, lr=lr, penalty=cfg.penalty, alpha=cfg.alpha
                )
    return wg, wh
