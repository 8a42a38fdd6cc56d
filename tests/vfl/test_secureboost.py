"""SecureBoost over the in-memory network against XGBoost on the joined features."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.vfl._secureboost_helpers import LABEL, breast, config, friedman, nonlinear, run
from vfl.errors import ConfigError, VflError
from vfl.metrics import auc
from vfl.secureboost import (
    Objective,
    SecureBoostFeatureParty,
    SecureBoostLabelParty,
    parse_secureboost_model,
)


def _xgb(kind: str, cfg: Any, xtr: pd.DataFrame, ytr: pd.Series) -> Any:
    common = dict(
        n_estimators=cfg.trees,
        max_depth=cfg.max_depth,
        learning_rate=cfg.learning_rate,
        max_bin=cfg.max_bin,
        reg_lambda=cfg.reg_lambda,
        min_child_weight=cfg.min_child_weight,
        tree_method="hist",
        n_jobs=1,
        random_state=0,
    )
    model = xgb.XGBRegressor(**common) if kind == "reg" else xgb.XGBClassifier(**common)
    return model.fit(xtr, ytr)


@pytest.mark.parametrize("scheme", ["plain", "paillier"])
def test_breast_two_parties_matches_xgboost(scheme: str) -> None:
    xtr, xte, ytr, yte = breast()
    cols = list(xtr.columns)
    cfg = config(trees=8, max_depth=3, learning_rate=0.3, max_bin=16, scheme=scheme)
    proba, label, _, _ = run(cfg, xtr, xte, ytr, yte, [cols[::2], cols[1::2]])
    ref = _xgb("clf", cfg, xtr, ytr).predict_proba(xte)[:, 1]
    ours = auc(yte.to_numpy(), proba)
    assert ours >= auc(yte.to_numpy(), ref) - 0.01
    assert len(label.forest_) == 8
    assert label.crypto_["scheme"] == scheme


def test_nonlinear_three_parties_plain_matches_xgboost() -> None:
    xtr, xte, ytr, yte = nonlinear()
    cols = list(xtr.columns)
    cfg = config(trees=20, max_depth=4, learning_rate=0.3, max_bin=32, scheme="plain")
    proba, label, features, _ = run(cfg, xtr, xte, ytr, yte, [cols[:4], cols[4:8], cols[8:]])
    ref = _xgb("clf", cfg, xtr, ytr).predict_proba(xte)[:, 1]
    ours, theirs = auc(yte.to_numpy(), proba), auc(yte.to_numpy(), ref)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    # every party owns some splits: the label party picks the best over all of them
    kinds = label.forest_.kind
    owners = set(label.forest_.owner[kinds == 3].tolist())
    assert owners == {0, 1}
    assert all(len(f.feature_) for f in features.values())


def test_paillier_three_parties_equals_plain() -> None:
    """Encryption is lossless up to the 2^-20 fixed point: the same trees as the plain run."""
    xtr, xte, ytr, yte = nonlinear(n=400)
    cols = list(xtr.columns)
    split = [cols[:4], cols[4:8], cols[8:]]
    plain_p, plain_l, _, _ = run(
        config(trees=3, max_depth=3, scheme="plain"), xtr, xte, ytr, yte, split
    )
    enc_p, enc_l, _, _ = run(
        config(trees=3, max_depth=3, scheme="paillier"), xtr, xte, ytr, yte, split
    )
    np.testing.assert_array_equal(plain_l.forest_.kind, enc_l.forest_.kind)
    np.testing.assert_array_equal(plain_l.forest_.owner, enc_l.forest_.owner)
    np.testing.assert_allclose(enc_p, plain_p, atol=1e-9)


def test_regression_friedman_close_to_xgboost() -> None:
    xtr, xte, ytr, yte = friedman()
    cols = list(xtr.columns)
    cfg = config(
        trees=30,
        max_depth=4,
        learning_rate=0.3,
        max_bin=32,
        objective=Objective.REGRESSION,
        scheme="plain",
    )
    pred, _, _, _ = run(cfg, xtr, xte, ytr, yte, [cols[:3], cols[3:]])
    ref = _xgb("reg", cfg, xtr, ytr).predict(xte)
    rmse = float(np.sqrt(np.mean((pred - yte.to_numpy()) ** 2)))
    ref_rmse = float(np.sqrt(np.mean((ref - yte.to_numpy()) ** 2)))
    assert rmse <= ref_rmse * 1.05, (rmse, ref_rmse)


def test_multiclass_close_to_xgboost() -> None:
    xa, ya = make_classification(
        n_samples=900, n_features=8, n_informative=6, n_redundant=0, n_classes=3, random_state=5
    )
    frame = pd.DataFrame(xa, columns=[f"c{i}" for i in range(8)])
    xtr, xte, ytr, yte = train_test_split(frame, pd.Series(ya), test_size=0.3, random_state=5)
    cfg = config(trees=10, max_depth=3, objective=Objective.MULTICLASS, num_class=3, scheme="plain")
    proba, label, _, _ = run(
        cfg, xtr, xte, ytr, yte, [["c0", "c1", "c2"], ["c3", "c4", "c5", "c6", "c7"]]
    )
    assert proba.shape == (len(xte), 3)
    assert len(label.forest_) == 30
    ref = _xgb("clf", cfg, xtr, ytr).predict_proba(xte)
    acc = float(np.mean(proba.argmax(1) == yte.to_numpy()))
    ref_acc = float(np.mean(ref.argmax(1) == yte.to_numpy()))
    assert acc >= ref_acc - 0.03, (acc, ref_acc)


def test_missing_values_learnt_per_split() -> None:
    xtr, xte, ytr, yte = breast()
    rng = np.random.default_rng(0)
    xtr, xte = xtr.copy(), xte.copy()
    for frame in (xtr, xte):
        mask = rng.random(frame.shape) < 0.2
        frame[mask] = np.nan
    cols = list(xtr.columns)
    cfg = config(trees=10, max_depth=3, max_bin=16, scheme="plain")
    proba, label, features, _ = run(cfg, xtr, xte, ytr, yte, [cols[:10], cols[10:]])
    ref = _xgb("clf", cfg, xtr, ytr).predict_proba(xte)[:, 1]
    assert auc(yte.to_numpy(), proba) >= auc(yte.to_numpy(), ref) - 0.01
    # both default directions were chosen somewhere (XGBoost's sparsity-aware split finding)
    sides = set(features["p1"].missing_left_) | set(
        label.forest_.missing_left[label.forest_.kind == 2].tolist()
    )
    assert sides == {True, False}


def test_early_stopping_keeps_the_best_round() -> None:
    xtr, xte, ytr, yte = nonlinear(n=600, seed=7)
    cols = list(xtr.columns)
    cfg = config(
        trees=40,
        max_depth=5,
        learning_rate=1.0,
        validation_fraction=0.3,
        early_stopping_rounds=3,
        scheme="plain",
        min_child_weight=0.0,
        reg_lambda=0.0,
    )
    _, label, _, _ = run(cfg, xtr, xte, ytr, yte, [cols[:6], cols[6:]])
    val = [r["val_loss"] for r in label.history_]
    assert len(val) < 40  # stopped early
    best = int(np.argmin(val)) + 1
    assert label.best_round_ == best
    assert len(label.forest_) == best
    assert len(val) == best + 3


def test_subsample_and_model_files_round_trip(tmp_path: Any) -> None:
    xtr, xte, ytr, yte = breast()
    cols = list(xtr.columns)
    cfg = config(trees=5, max_depth=3, subsample=0.7, scheme="paillier")
    proba, label, features, _ = run(cfg, xtr, xte, ytr, yte, [cols[:15], cols[15:]])
    label.save(tmp_path / "label.json")
    features["p1"].save(tmp_path / "feature.json")
    text = (tmp_path / "label.json").read_text() + (tmp_path / "feature.json").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON
    label2 = SecureBoostLabelParty.load(tmp_path / "label.json", cfg)
    feature2 = SecureBoostFeatureParty.load(tmp_path / "feature.json", cfg)
    te_l = xte[cols[:15]].reset_index(drop=True)
    te_f = xte[cols[15:]].reset_index(drop=True)
    net = InMemoryNetwork([LABEL, "p1"], job_id="sb-reload", seed=1)
    out = run_parties(
        {
            LABEL: lambda ch: label2.predict_proba(te_l, channel=ch),
            "p1": lambda ch: feature2.predict(te_f, channel=ch),
        },
        network=net,
    )
    np.testing.assert_allclose(out[LABEL], proba)


def test_row_count_mismatch_is_refused() -> None:
    xtr, xte, ytr, yte = breast()
    cols = list(xtr.columns)
    cfg = config(trees=1, max_depth=2, scheme="plain")
    label = SecureBoostLabelParty(cfg)
    feature = SecureBoostFeatureParty(cfg)
    tr_l = xtr[cols[:5]].assign(y=ytr.to_numpy()).reset_index(drop=True)
    tr_f = xtr[cols[5:]].iloc[:-1].reset_index(drop=True)
    net = InMemoryNetwork([LABEL, "p1"], job_id="sb-bad", seed=0)
    with pytest.raises(VflError, match="training rows"):
        run_parties(
            {
                LABEL: lambda ch: label.fit(tr_l, channel=ch, feature_parties=["p1"]),
                "p1": lambda ch: feature.fit(tr_f, channel=ch, label_party=LABEL),
            },
            network=net,
            timeout=30,
        )


def test_model_table_parsing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = parse_secureboost_model(
            {"trees": 3, "objective": "multiclass", "num_class": 4, "learning_rate": 1},
            scheme="paillier",
            key_bits=2048,
        )
    assert cfg.objective is Objective.MULTICLASS and cfg.outputs == 4
    with pytest.raises(ConfigError, match="model.depth"):
        parse_secureboost_model({"depth": 3}, scheme="paillier", key_bits=2048)
    with pytest.raises(ConfigError, match="model.max_bin"):
        parse_secureboost_model({"max_bin": 1}, scheme="paillier", key_bits=2048)
    with pytest.raises(ConfigError, match="model.objective"):
        parse_secureboost_model({"objective": "poisson"}, scheme="paillier", key_bits=2048)
    with pytest.raises(ConfigError, match="key_bits"):
        parse_secureboost_model({}, scheme="paillier", key_bits=1024)
    with pytest.warns(UserWarning, match="in the clear"):
        parse_secureboost_model({}, scheme="plain", key_bits=2048)


def test_mismatched_settings_are_refused_before_any_gradient() -> None:
    xtr, _, ytr, _ = breast()
    cols = list(xtr.columns)
    label = SecureBoostLabelParty(config(trees=1, max_depth=3, scheme="plain"))
    feature = SecureBoostFeatureParty(config(trees=1, max_depth=4, scheme="plain"))
    tr_l = xtr[cols[:5]].assign(y=ytr.to_numpy()).reset_index(drop=True)
    tr_f = xtr[cols[5:]].reset_index(drop=True)
    net = InMemoryNetwork([LABEL, "p1"], job_id="sb-settings", seed=0)
    with pytest.raises(VflError, match="other settings"):
        run_parties(
            {
                LABEL: lambda ch: label.fit(tr_l, channel=ch, feature_parties=["p1"]),
                "p1": lambda ch: feature.fit(tr_f, channel=ch, label_party=LABEL),
            },
            network=net,
            timeout=30,
        )
    assert not net.transcript.on_topic("sb/gh")


def test_default_credit_matches_xgboost() -> None:
    """The bundled default credit files (bank = guest, retailer = host), 4,000 training rows."""
    from vfl.bench.secureboost import DATA, _data

    g_tr, h_tr, g_te, h_te = _data(DATA, 4000)
    h_tr, h_te = h_tr.add_prefix("h_"), h_te.add_prefix("h_")
    xtr = pd.concat([g_tr.drop(columns="y"), h_tr], axis=1)
    xte = pd.concat([g_te.drop(columns="y"), h_te], axis=1)
    own, other = [c for c in g_tr.columns if c != "y"], list(h_tr.columns)
    cfg = config(trees=10, max_depth=4, max_bin=32, scheme="plain")
    proba, _, _, _ = run(cfg, xtr, xte, g_tr["y"], g_te["y"], [own, other])
    ref = _xgb("clf", cfg, xtr, g_tr["y"]).predict_proba(xte)[:, 1]
    ours, theirs = auc(g_te["y"].to_numpy(), proba), auc(g_te["y"].to_numpy(), ref)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_fate_breast_files_match_xgboost() -> None:
    """FATE's breast pair (tests/data/fate): bank = guest (y + 10 columns), p1 = host (20)."""
    from tests._data import read_fate

    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv").add_prefix("h_")
    x = pd.concat([g.drop(columns=["id", "y"]), h.drop(columns=["h_id"])], axis=1)
    xtr, xte, ytr, yte = train_test_split(x, g["y"], test_size=0.3, random_state=0, stratify=g["y"])
    own = [c for c in g.columns if c not in ("id", "y")]
    other = [c for c in h.columns if c != "h_id"]
    cfg = config(trees=8, max_depth=3, max_bin=16, scheme="paillier")
    proba, _, _, _ = run(cfg, xtr, xte, ytr, yte, [own, other])
    ref = _xgb("clf", cfg, xtr, ytr).predict_proba(xte)[:, 1]
    assert auc(yte.to_numpy(), proba) >= auc(yte.to_numpy(), ref) - 0.01
