"""Secure aggregation: masks cancel in the sum, the aggregator never sees an update in clear,
and a round with a dropout is skipped instead of producing garbage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.keys import AgreementKey
from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from vfl.errors import ConfigError, VflError
from vfl.horizontal import (
    AGGREGATOR_NAME,
    ClientUpdate,
    FedClient,
    FedConfig,
    LocalTraining,
    Mode,
    ValidationPolicy,
    logistic_factory,
    simulate,
)
from vfl.horizontal._secagg import decode_fixed, encode_fixed, mask_update, unmask_sum

D = 6
LOCAL = LocalTraining(epochs=1, learning_rate=0.1, batch_size=32)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    y = (rng.random(n) < 1 / (1 + np.exp(-(x @ np.linspace(-1, 1, D))))).astype(np.float64)
    return x, y


def _clients(k: int) -> dict[str, Any]:
    return {
        f"c{i}": FedClient(*_data(300, i), model_factory=logistic_factory(), seed=i)
        for i in range(k)
    }


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 6), st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_pairwise_masks_cancel_in_the_sum(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    names = [f"p{i}" for i in range(n)]
    keys = {p: AgreementKey.generate(rng=SeededRandom(seed + i)) for i, p in enumerate(names)}
    pubs = {p: k.public_bytes() for p, k in keys.items()}
    vals = {p: rng.normal(scale=100.0, size=d) for p in names}
    masked = {
        p: mask_update(vals[p], me=p, key=keys[p], peers=pubs, job="j", round=4) for p in names
    }
    total = sum(vals.values())
    assert isinstance(total, np.ndarray)
    np.testing.assert_allclose(unmask_sum(masked), total, atol=n * 2.0**-23)
    # Without one client's vector the others' masks do not cancel.
    partial = {p: masked[p] for p in names[1:]}
    assert np.max(np.abs(unmask_sum(partial) - (total - vals[names[0]]))) > 1e3


def test_fixed_point_round_trip_and_limits() -> None:
    v = np.array([-3.25, 0.0, 1e-7, 12345.678])
    np.testing.assert_allclose(decode_fixed(encode_fixed(v)), v, atol=2.0**-24)
    with pytest.raises(VflError):
        encode_fixed(np.array([np.nan]))
    with pytest.raises(VflError):
        encode_fixed(np.array([1e13]))


def test_secure_fedavg_equals_plain_fedavg_and_hides_each_update() -> None:
    cfg = FedConfig(rounds=3, local=LOCAL)
    plain = simulate(_clients(3), cfg, np.zeros(D + 1))
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id="secagg", seed=0)
    secure_cfg = FedConfig(rounds=3, local=LOCAL, secure_aggregation=True)
    secure = simulate(_clients(3), secure_cfg, np.zeros(D + 1), network=net)
    np.testing.assert_allclose(secure.params, plain.params, atol=1e-6)
    assert all(h.accepted == ("c0", "c1", "c2") and not h.skipped for h in secure.history)
    updates = [m.payload for m in net.transcript.received_by(AGGREGATOR_NAME)
               if m.topic == "fl/update"]  # fmt: skip
    assert len(updates) == 9
    for u in updates:
        assert isinstance(u, ClientUpdate) and u.delta.dtype == np.uint64
        # A true weighted update is |n * delta| < 1e3 here; a masked one is uniform in Z_2^64.
        assert np.all(np.abs(decode_fixed(u.delta)) > 1e4)


def test_a_dropout_in_a_secure_round_skips_it() -> None:
    net = InMemoryNetwork([AGGREGATOR_NAME, "c0", "c1", "c2"], job_id="secagg-drop", seed=0)
    net.faults.drop(sender="c2", topic="fl/update", count=1)
    cfg = FedConfig(rounds=2, local=LOCAL, secure_aggregation=True, round_timeout=1.5)
    res = simulate(_clients(3), cfg, np.zeros(D + 1), network=net)
    first, second = res.history
    assert first.skipped and first.dropped == {"c2": "deadline"} and first.accepted == ()
    assert not second.skipped and second.accepted == ("c0", "c1", "c2")
    assert any(e["event"] == "secure_round_incomplete" for e in res.events)


def test_secure_aggregation_config_conflicts() -> None:
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, aggregator="median")
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, mode=Mode.ASYNC)
    with pytest.raises(ConfigError, match="secure_aggregation"):
        FedConfig(secure_aggregation=True, validation=ValidationPolicy(max_norm=1.0))
