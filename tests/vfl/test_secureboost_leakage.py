"""The leakage table of docs/protocols/secureboost.md, checked on recorded transcripts.

Attacks by a spying party on what it received, and by a deviating label party on the feature
party's checks; all over ``InMemoryNetwork`` on the real protocol code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crypto.paillier import PaillierPublicKey
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.vfl._secureboost_helpers import LABEL, breast, config, nonlinear, run, small_key
from vfl.errors import VflError
from vfl.secureboost import Objective, SecureBoostFeatureParty
from vfl.secureboost._cipher import Layout, ciphertexts_to_wire, encrypt_gradients
from vfl.secureboost._tree import REMOTE
from vfl.secureboost._wire import TOPIC, pack_lists

INT_TOPICS = {
    "sb/tree",
    "sb/rows",
    "sb/build",
    "sb/split",
    "sb/split-rows",
    "sb/predict",
    "sb/route",
}


def _paillier_run(**kw: Any) -> tuple[Any, Any, Any, InMemoryNetwork, Any]:
    xtr, xte, ytr, yte = breast()
    cols = list(xtr.columns)
    cfg = config(trees=3, max_depth=3, max_bin=16, scheme="paillier", **kw)
    proba, label, features, net = run(cfg, xtr, xte, ytr, yte, [cols[:15], cols[15:]])
    return proba, label, features, net, ytr


def test_feature_party_sees_only_fixed_width_ciphertexts_and_row_ids() -> None:
    _, label, features, net, ytr = _paillier_run()
    width = small_key().public_key.ciphertext_bytes
    received = net.transcript.received_by("p1")
    assert received
    for m in received:
        p = m.payload
        if m.topic == "sb/key":
            assert isinstance(p, PaillierPublicKey)
        elif m.topic == "sb/gh":
            # one fixed-width ciphertext per sampled row: no scale, bound or offset metadata
            assert p.dtype == np.uint8 and p.ndim == 2 and p.shape[1] == width
        else:
            assert m.topic in INT_TOPICS, m.topic
            assert isinstance(p, np.ndarray) and p.dtype.kind == "i", m.topic
    # no float ever reaches the feature party: gradients, hessians, leaf weights stay hidden
    assert not any(
        isinstance(m.payload, np.ndarray) and m.payload.dtype.kind == "f" for m in received
    )


def test_equal_gradients_give_unrelated_ciphertexts() -> None:
    """Attack: group rows by ciphertext equality in tree 1 (where g depends only on y)."""
    _, _, _, net, ytr = _paillier_run()
    first = next(m.payload for m in net.transcript.received_by("p1") if m.topic == "sb/gh")
    as_bytes = [row.tobytes() for row in first]
    assert len(set(as_bytes)) == len(
        as_bytes
    )  # every ciphertext differs: the groups are singletons
    # and the ciphertext bytes carry no usable signal about the label either
    from vfl.metrics import auc

    score = np.asarray([int.from_bytes(b[:8], "big") for b in as_bytes], dtype=np.float64)
    assert abs(auc(ytr.to_numpy()[: len(score)], score) - 0.5) < 0.1


def test_label_party_sees_fixed_shape_histograms_whatever_the_data() -> None:
    """The histogram message never reveals how many distinct values a feature has."""
    xtr, xte, ytr, yte = breast()
    cols = list(xtr.columns)
    cfg = config(trees=1, max_depth=2, max_bin=16, scheme="paillier")
    _, _, _, net_a = run(cfg, xtr, xte, ytr, yte, [cols[:15], cols[15:]])
    coarse = xtr.copy()
    coarse[cols[15:]] = np.round(coarse[cols[15:]].rank(pct=True) * 2)  # 3 distinct values each
    _, _, _, net_b = run(cfg, coarse, xte, ytr, yte, [cols[:15], cols[15:]])
    width = small_key().public_key.ciphertext_bytes

    def root_hist(net: InMemoryNetwork) -> Any:
        return next(m for m in net.transcript.between("p1", LABEL) if m.topic == "sb/hist")

    a, b = root_hist(net_a), root_hist(net_b)
    # public: from the key size, the objective and the row count alone
    per = Layout.for_job(Objective.BINARY, len(xtr)).per_ciphertext(small_key().public_key)
    assert a.payload.shape == b.payload.shape == (-(-15 * 17 // per), width)
    assert a.nbytes == b.nbytes
    for m in net_a.transcript.between("p1", LABEL):
        assert m.payload.dtype.kind in "iu", (
            m.topic
        )  # ciphertext bytes, record ids, bits: no floats


def test_feature_party_learns_only_its_own_splits() -> None:
    xtr, xte, ytr, yte = nonlinear(n=500)
    cols = list(xtr.columns)
    cfg = config(trees=3, max_depth=3, scheme="paillier")
    _, label, features, net = run(cfg, xtr, xte, ytr, yte, [cols[:4], cols[4:8], cols[8:]])
    forest = label.forest_
    for j, name in enumerate(["p1", "p2"]):
        owned = int(((forest.kind == REMOTE) & (forest.owner == j)).sum())
        specs = [m.payload for m in net.transcript.received_by(name) if m.topic == "sb/split"]
        assert sum(len(s) for s in specs) == owned == len(features[name].feature_)
        assert owned > 0
    # the thresholds of remote splits never reach the label party
    assert np.all(forest.threshold[forest.kind == REMOTE] == 0.0)
    for m in net.transcript.received_by(LABEL):
        assert not (isinstance(m.payload, np.ndarray) and m.payload.dtype.kind == "f"), m.topic


def test_feature_slots_are_permuted_per_tree() -> None:
    """The label party sees a slot index, not a column: the slot order changes every tree."""
    xtr, xte, ytr, yte = nonlinear(n=500)
    cols = list(xtr.columns)
    xtr = xtr.copy()
    for levels, c in enumerate(cols[2:7], start=2):  # 2..6 distinct values: telltale counts
        xtr[c] = np.floor(xtr[c].rank(pct=True, method="first") * levels * 0.999)
    cfg = config(trees=6, max_depth=1, objective=Objective.REGRESSION, scheme="plain")
    _, _, _, net = run(cfg, xtr, xte, ytr.astype(float), yte.astype(float), [cols[:2], cols[2:7]])
    roots = [m.payload[0] for m in net.transcript.between("p1", LABEL) if m.topic == "sb/hist"]
    # regression: h = 1, so the H column of a slot is its feature's bin counts (a fingerprint)
    orders = [tuple(tuple(np.round(h[:, 1]).astype(int)) for h in root) for root in roots]
    assert len(orders) == 6 and len(set(orders[0])) == 5
    assert all(sorted(o) == sorted(orders[0]) for o in orders)  # the same features every tree
    assert len(set(orders)) > 1  # but not in the same slots


def _deviating_label(build: Any, spec: Any = None, spec_rows: Any = None) -> Any:
    key = small_key()

    def fn(ch: Any) -> None:
        ch.recv("p1", TOPIC["setup"])
        ch.send("p1", TOPIC["key"], key.public_key)
        ch.send("p1", TOPIC["tree"], np.asarray([1], np.int64))
        g = np.linspace(-0.5, 0.5, 10)
        layout = Layout.for_job(Objective.BINARY, 40)
        cts = encrypt_gradients(key, g, np.full(10, 0.25), layout=layout, obfuscator="djn")
        ch.send("p1", TOPIC["gh"], ciphertexts_to_wire(key.public_key, cts))
        ch.send("p1", TOPIC["rows"], np.arange(10, dtype=np.int64))
        ch.send("p1", TOPIC["build"], build)
        if spec is not None:
            ch.recv("p1", TOPIC["hist"])
            ch.send("p1", TOPIC["split"], spec)
            ch.send("p1", TOPIC["split_rows"], spec_rows)
        ch.recv("p1", TOPIC["part"], timeout=30)

    return fn


@pytest.mark.parametrize(
    ("build", "spec", "match"),
    [
        (pack_lists([0], [np.asarray([3, 25])]), None, "unsampled rows"),
        (pack_lists([0], [np.asarray([3, 3])]), None, "bad row indices"),
        (np.asarray([5, 0, 1]), None, "malformed build request"),
        (pack_lists([0], [np.arange(10)]), np.asarray([[0, 99, 0, 0]]), "outside this party"),
        (pack_lists([0], [np.arange(10)]), np.asarray([[0, 0, 16, 0]]), "outside this party"),
    ],
)
def test_feature_party_refuses_a_deviating_label_party(build: Any, spec: Any, match: str) -> None:
    xtr = breast()[0]
    cfg = config(trees=1, max_depth=2, max_bin=16, scheme="paillier")
    feature = SecureBoostFeatureParty(cfg)
    frame = xtr.iloc[:40, :5].reset_index(drop=True)
    net = InMemoryNetwork([LABEL, "p1"], job_id="sb-deviate", seed=0)
    rows = pack_lists([0], [np.arange(10)]) if spec is not None else None
    with pytest.raises(VflError, match=match):
        run_parties(
            {
                LABEL: _deviating_label(build, spec, rows),
                "p1": lambda ch: feature.fit(frame, channel=ch, label_party=LABEL),
            },
            network=net,
            timeout=60,
        )
