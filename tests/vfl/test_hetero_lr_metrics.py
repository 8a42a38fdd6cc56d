"""vfl.metrics against scikit-learn on random data (hypothesis) and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score, roc_curve

from vfl import metrics
from vfl.errors import VflError


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=4, max_value=200),
    st.booleans(),
)
def test_auc_ks_logloss_match_sklearn(seed: int, n: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    y[0], y[1] = 0, 1
    score = rng.random(n)
    if ties:
        score = np.round(score, 1)
    assert metrics.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, score)
    assert metrics.ks(y, score) == pytest.approx(float(np.max(tpr - fpr)), abs=1e-12)
    p = np.clip(score, 0.01, 0.99)
    assert metrics.log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-9)


def test_known_answers_and_errors() -> None:
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.ks([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.5)
    assert metrics.accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    out = metrics.binary_metrics([0, 1, 1, 0], [0.2, 0.9, 0.6, 0.4], prefix="test_")
    assert set(out) == {"test_auc", "test_ks", "test_accuracy", "test_logloss"}
    assert out["test_accuracy"] == 1.0
    with pytest.raises(VflError, match="only one class"):
        metrics.auc([1, 1], [0.2, 0.3])
    with pytest.raises(VflError, match="labels in"):
        metrics.auc([0, 2], [0.2, 0.3])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    multi = metrics.multiclass_metrics([0, 1, 2], proba)
    assert multi["accuracy"] == 1.0 and multi["auc_macro_ovr"] == 1.0
    assert multi["logloss"] == pytest.approx(sk_log_loss([0, 1, 2], proba))
