"""Hetero LR in plain mode: the protocol computes exactly the central reference, and the API."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from protocols.channel import Channel
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests._data import read_fate
from tests.vfl._hetero_lr_helpers import breast, reference, run
from vfl.errors import ConfigError, VflError
from vfl.hetero_lr import (
    ClassWeight,
    CryptoSettings,
    HeteroLRConfig,
    HeteroLRFeatureParty,
    HeteroLRLabelParty,
    SchemeName,
)

PLAIN = CryptoSettings(scheme=SchemeName.PLAIN)


@pytest.mark.parametrize(
    "overrides",
    [
        {"approximation": "taylor"},
        {"approximation": "local", "penalty": "l2", "alpha": 0.01},
        {
            "approximation": "local",
            "penalty": "l1",
            "alpha": 0.01,
            "class_weight": "balanced",
            "lr_schedule": "inverse_time",
            "lr_decay": 0.5,
        },
    ],
)
def test_two_party_matches_central_reference(overrides: dict[str, object]) -> None:
    g, h = breast()
    settings = {"epochs": 3, "batch_size": 128, "validation_fraction": 0.0, **overrides}
    cfg = HeteroLRConfig.from_mapping(settings, crypto=PLAIN)
    label, features, _, _ = run(cfg, g, {"retailer": h})
    wg, wh = reference(cfg, g, {"retailer": h})
    np.testing.assert_allclose(label.weights_[:, 0], wg, atol=1e-9)
    np.testing.assert_allclose(features["retailer"].weights_[:, 0], wh["retailer"], atol=1e-9)


def test_three_parties_match_central_reference_and_g_learns_only_sums() -> None:
    g, h = breast()
    parts = {"retailer": h[["id", *h.columns[1:11]]], "telco": h[["id", *h.columns[11:]]]}
    cfg = HeteroLRConfig(
        epochs=2,
        batch_size=128,
        validation_fraction=0.0,
        class_weight=ClassWeight.BALANCED,
        crypto=PLAIN,
    )
    label, features, results, net = run(cfg, g, parts)
    wg, wh = reference(cfg, g, parts)
    np.testing.assert_allclose(label.weights_[:, 0], wg, atol=1e-9)
    for name in parts:
        np.testing.assert_allclose(features[name].weights_[:, 0], wh[name], atol=1e-9)
    assert results["bank"]["auc"] > 0.95
    # Scores reach G only masked by zero-sum masks: each party's message alone is far from its u_j.
    for message in net.transcript.received_by("bank"):
        if message.topic == "hetero_lr/scores":
            raw = np.array([float(v) for v in message.payload.values]) / 2.0**40
            assert np.max(np.abs(raw)) > 1e6


def test_plain_mode_warns_and_reports_scheme() -> None:
    g, h = breast(200)
    cfg = HeteroLRConfig(epochs=1, batch_size=96, crypto=PLAIN)
    with pytest.warns(UserWarning, match="WITHOUT encryption"):
        label = HeteroLRLabelParty(cfg, id_column="id")
        feature = HeteroLRFeatureParty(cfg, id_column="id")
        net = InMemoryNetwork(["bank", "retailer"], job_id="w", seed=0)
        run_parties(
            {
                "bank": lambda ch: label.fit(g, channel=ch),
                "retailer": lambda ch: feature.fit(h, channel=ch, label_party="bank"),
            },
            network=net,
            timeout=60,
        )
    assert label.crypto_["scheme"] == "plain"


def test_early_stopping_restores_best_and_history() -> None:
    g, h = breast()
    cfg = HeteroLRConfig(
        epochs=40,
        batch_size=96,
        learning_rate=0.3,
        validation_fraction=0.2,
        early_stopping_patience=2,
        crypto=PLAIN,
    )
    label, _, results, _ = run(cfg, g, {"retailer": h})
    assert 1 <= len(label.history_) < 40
    assert all("val_auc" in r and "val_logloss" in r for r in label.history_)
    assert results["bank"]["auc"] > 0.98
    assert set(results["bank"]) == {"auc", "ks", "accuracy", "logloss"}


def test_save_load_predicts_the_same(tmp_path: Path) -> None:
    g, h = breast()
    cfg = HeteroLRConfig(epochs=3, batch_size=128, crypto=PLAIN)
    label, features, _, _ = run(cfg, g, {"retailer": h})
    label.save(tmp_path / "bank.json")
    features["retailer"].save(tmp_path / "retailer.json")
    text = (tmp_path / "retailer.json").read_text()
    assert '"y"' not in text and "classes" not in text
    l2 = HeteroLRLabelParty.load(tmp_path / "bank.json")
    f2 = HeteroLRFeatureParty.load(tmp_path / "retailer.json")
    net = InMemoryNetwork(["bank", "retailer"], job_id="reload", seed=1)

    def retailer(ch: Channel) -> None:
        features["retailer"].predict_proba(h, channel=ch)
        f2.predict_proba(h, channel=ch)

    res = run_parties(
        {
            "bank": lambda ch: (
                label.predict_proba(g, channel=ch),
                l2.predict_proba(g, channel=ch),
            ),
            "retailer": retailer,
        },
        network=net,
        timeout=60,
    )
    before = res["bank"]
    np.testing.assert_allclose(before[0], before[1], atol=1e-9)
    with pytest.raises(VflError, match="not a label model"):
        HeteroLRLabelParty.load(tmp_path / "retailer.json")


def test_multiclass_one_vs_rest() -> None:
    g = read_fate("vehicle_scale_hetero_guest.csv")
    h = read_fate("vehicle_scale_hetero_host.csv")
    cfg = HeteroLRConfig(epochs=15, batch_size=128, validation_fraction=0.0, crypto=PLAIN)
    label, features, results, _ = run(cfg, g, {"retailer": h})
    assert label.weights_.shape[1] == 4 and features["retailer"].weights_.shape == (9, 4)
    assert results["bank"]["accuracy"] > 0.6
    assert "auc_macro_ovr" in results["bank"]


def test_batch_too_small_for_feature_count_is_refused() -> None:
    g, h = breast()
    cfg = HeteroLRConfig(epochs=1, batch_size=40, crypto=PLAIN)
    with pytest.raises(ConfigError, match="batch_size must be >="):
        run(cfg, g, {"retailer": h})


def test_row_count_mismatch_is_refused() -> None:
    g, h = breast()
    cfg = HeteroLRConfig(epochs=1, batch_size=128, crypto=PLAIN)
    with pytest.raises(ConfigError, match="row counts differ"):
        run(cfg, g, {"retailer": h.iloc[:-5]})


def test_different_settings_are_refused() -> None:
    g, h = breast(200)
    net = InMemoryNetwork(["bank", "retailer"], job_id="x", seed=0)
    label = HeteroLRLabelParty(
        HeteroLRConfig(epochs=2, batch_size=96, crypto=PLAIN), id_column="id"
    )
    feature = HeteroLRFeatureParty(
        HeteroLRConfig(epochs=3, batch_size=96, crypto=PLAIN), id_column="id"
    )
    with warnings.catch_warnings(), pytest.raises(ConfigError, match="epochs differ"):
        warnings.simplefilter("ignore", UserWarning)
        run_parties(
            {
                "bank": lambda ch: label.fit(g, channel=ch),
                "retailer": lambda ch: feature.fit(h, channel=ch, label_party="bank"),
            },
            network=net,
            timeout=60,
        )


def test_non_numeric_feature_is_an_error() -> None:
    g, h = breast(200)
    h = h.assign(x0=h["x0"].astype(str))
    with pytest.raises(ConfigError, match="'x0' is not numeric"):
        run(HeteroLRConfig(epochs=1, batch_size=96, crypto=PLAIN), g, {"retailer": h})


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="model.learning_rate"):
        HeteroLRConfig.from_mapping({"learning_rate": "fast"})
    with pytest.raises(ConfigError, match="unknown key model.epoch "):
        HeteroLRConfig.from_mapping({"epoch": 3})
    with pytest.raises(ConfigError, match="model.penalty must be one of"):
        HeteroLRConfig.from_mapping({"penalty": "l3"})
    with pytest.raises(ConfigError, match="crypto.key_bits must be >= 2048"):
        CryptoSettings(key_bits=1024)


def test_parties_with_different_precision_are_refused() -> None:
    """Scales are derived by each receiver from crypto.precision_bits (the wire carries none):
    a feature party configured with another precision refuses the plan before any data moves."""
    g, h = breast(200)
    label = HeteroLRLabelParty(
        HeteroLRConfig(epochs=1, batch_size=96, crypto=PLAIN), id_column="id"
    )
    other = CryptoSettings(scheme=SchemeName.PLAIN, precision_bits=24)
    feature = HeteroLRFeatureParty(
        HeteroLRConfig(epochs=1, batch_size=96, crypto=other), id_column="id"
    )
    net = InMemoryNetwork(["bank", "retailer"], job_id="precision", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises((ConfigError, VflError), match="precision_bits differ"):
            run_parties(
                {
                    "bank": lambda ch: label.fit(g, channel=ch),
                    "retailer": lambda ch: feature.fit(h, channel=ch, label_party="bank"),
                },
                network=net,
                timeout=60,
            )
