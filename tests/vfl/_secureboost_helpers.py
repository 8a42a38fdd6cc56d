"""Shared setup of the SecureBoost tests: vertical splits of sklearn's bundled / generated sets."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, make_classification, make_friedman1
from sklearn.model_selection import train_test_split

from crypto.paillier import generate_keypair
from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.secureboost import SecureBoostConfig, SecureBoostFeatureParty, SecureBoostLabelParty

LABEL = "bank"
TEST_KEY_BITS = 512
_KEY: dict[int, Any] = {}


def small_key() -> Any:
    """One small Paillier key per test session (tests only)."""
    if TEST_KEY_BITS not in _KEY:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _KEY[TEST_KEY_BITS] = generate_keypair(TEST_KEY_BITS, insecure_allow_small_keys=True)[1]
    return _KEY[TEST_KEY_BITS]


def config(**kw: Any) -> SecureBoostConfig:
    kw.setdefault("key_bits", TEST_KEY_BITS)
    kw.setdefault("insecure_allow_small_keys", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SecureBoostConfig(**kw)


def breast() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    d = load_breast_cancer(as_frame=True)
    xtr, xte, ytr, yte = train_test_split(
        d.data, d.target, test_size=0.3, random_state=0, stratify=d.target
    )
    return xtr, xte, ytr, yte


def nonlinear(
    n: int = 1200, seed: int = 3
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    x, y = make_classification(
        n_samples=n,
        n_features=12,
        n_informative=8,
        n_redundant=2,
        n_clusters_per_class=3,
        flip_y=0.02,
        class_sep=0.8,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    xtr, xte, ytr, yte = train_test_split(frame, pd.Series(y), test_size=0.3, random_state=seed)
    return xtr, xte, ytr, yte


def friedman(n: int = 1000) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    x, y = make_friedman1(n_samples=n, n_features=8, noise=0.5, random_state=1)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    xtr, xte, ytr, yte = train_test_split(frame, pd.Series(y), test_size=0.3, random_state=1)
    return xtr, xte, ytr, yte


def run(
    cfg: SecureBoostConfig,
    xtr: pd.DataFrame,
    xte: pd.DataFrame,
    ytr: pd.Series,
    yte: pd.Series,
    split: Sequence[Sequence[str]],
    *,
    network: InMemoryNetwork | None = None,
) -> tuple[np.ndarray, SecureBoostLabelParty, dict[str, SecureBoostFeatureParty], InMemoryNetwork]:
    """Train over an in-memory network (label party holds ``split[0]``), score ``xte`` jointly."""
    names = [LABEL] + [f"p{i}" for i in range(1, len(split))]
    net = network or InMemoryNetwork(names, job_id="sb-test", seed=0)
    key = small_key() if cfg.scheme == "paillier" else None
    label = SecureBoostLabelParty(cfg, label_column="y", private_key=key)
    # seeded: the secret slot permutations are the same in a plain and an encrypted run
    features = {
        name: SecureBoostFeatureParty(cfg, rng=SeededRandom(i)) for i, name in enumerate(names[1:])
    }
    tr = [xtr[list(c)].reset_index(drop=True) for c in split]
    te = [xte[list(c)].reset_index(drop=True) for c in split]
    tr[0] = tr[0].assign(y=ytr.to_numpy())
    te[0] = te[0].assign(y=yte.to_numpy())

    def label_fn(ch: Any) -> np.ndarray:
        label.fit(tr[0], channel=ch, feature_parties=names[1:])
        return label.predict_proba(te[0], channel=ch)

    def feature_fn(i: int) -> Any:
        def fn(ch: Any) -> None:
            features[names[i]].fit(tr[i], channel=ch, label_party=LABEL)
            features[names[i]].predict(te[i], channel=ch)

        return fn

    fns = {LABEL: label_fn, **{names[i]: feature_fn(i) for i in range(1, len(names))}}
    out = run_parties(fns, network=net, timeout=900)
    return out[LABEL], label, features, net
