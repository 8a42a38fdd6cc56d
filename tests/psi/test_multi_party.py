"""Multi-party PSI (3 and 4 parties): exact common intersection, one order everywhere, and the
transcript shows no pairwise intersection information."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import psi
from crypto.random import SeededRandom
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties


def _party_sets(names: list[str], seed: int) -> tuple[dict[str, list[int]], set[int]]:
    """A common core, plus pairwise overlaps with the leader that are NOT in every set."""
    rs = np.random.default_rng(seed)
    pool = iter(rs.choice(10**12, 5000, replace=False).tolist())
    common = [next(pool) for _ in range(40)]
    sets = {n: list(common) + [next(pool) for _ in range(60 + 10 * i)] for i, n in enumerate(names)}
    # the leader shares 25 extra ids with the first feature party only
    extra = [next(pool) for _ in range(25)]
    sets[names[0]] += extra
    sets[names[1]] += extra
    for ids in sets.values():
        rs.shuffle(ids)
    return sets, set(common)


def _run(
    sets: dict[str, list[int]], *, reveal: str = "all", leader: str | None = None
) -> tuple[dict[str, psi.PSIResult], InMemoryNetwork]:
    names = list(sets)
    net = InMemoryNetwork(names, job_id="mpsi", seed=0)

    def party(name: str, seed: int) -> Any:
        return lambda ch: psi.intersect(
            sets[name], channel=ch, reveal=reveal, leader=leader, rng=SeededRandom(seed), workers=0
        )

    res = run_parties({n: party(n, i) for i, n in enumerate(names)}, network=net, timeout=300)
    return res, net


@pytest.mark.parametrize("k", [3, 4])
def test_common_intersection_in_one_order(k: int) -> None:
    names = ["bank"] + [f"shop{i}" for i in range(1, k)]
    sets, common = _party_sets(names, seed=k)
    res, _ = _run(sets)
    orders = []
    for name in names:
        rows = res[name].rows
        assert rows is not None and res[name].size == len(common)
        orders.append([sets[name][i] for i in rows])
    assert set(orders[0]) == common
    assert all(order == orders[0] for order in orders)


def test_leader_only_reveal() -> None:
    names = ["bank", "shop1", "shop2"]
    sets, common = _party_sets(names, seed=11)
    res, net = _run(sets, reveal="bank")
    rows = res["bank"].rows
    assert rows is not None and {sets["bank"][i] for i in rows} == common
    for name in names[1:]:
        assert res[name].size is None and res[name].rows is None
        assert "psi/members" not in {m.topic for m in net.transcript.received_by(name)}


def test_transcript_carries_no_pairwise_information() -> None:
    names = ["bank", "shop1", "shop2", "shop3"]
    sets, common = _party_sets(names, seed=12)
    res, net = _run(sets)
    messages = net.transcript.messages
    members = next(m.payload for m in messages if m.topic == "psi/members")
    t = members.shape[1]
    member_tags = {bytes(row) for row in members}
    assert len(member_tags) == len(common)
    # (1) No party ever receives the full encoding F(x) of any id on the ring: every ring point
    # still carries its origin's one-time scalar. (The naive ring, where the last hop applies
    # the last key, would hand F of a neighbour's ids to that hop -> pairwise sizes.)
    for m in messages:
        if m.topic.startswith("psi/ring/"):
            assert not member_tags & {bytes(row[:t]) for row in m.payload}
    # (2) Feature parties send the leader only garbled Bloom filters (no per-id tags), of a size
    # fixed by their set size; they receive from the leader nothing but the final members.
    for m in messages:
        if m.receiver == "bank" and m.sender != "bank":
            assert m.topic in {
                "psi/hello",
                "psi/agree",
                "psi/gbf",
                "psi/ring/bank",
                "psi/ring/shop1",
                "psi/ring/shop2",
                "psi/ring/shop3",
            }
        if m.sender == "bank" and m.topic == "psi/members":
            assert m.payload.shape == (len(common), t)
    # (3) The leader's result does not depend on the 25 ids it shares with shop1 only.
    assert res["bank"].size == len(common)


def test_three_party_size_only_is_refused() -> None:
    names = ["a", "b", "c"]
    net = InMemoryNetwork(names, job_id="mpsi", seed=0)
    with pytest.raises(psi.PSIUsageError, match="two parties only"):
        psi.intersect([1], channel=net.channel("a"), reveal="size", workers=0)


def test_sole_receiver_must_be_the_leader() -> None:
    names = ["a", "b", "c"]
    net = InMemoryNetwork(names, job_id="mpsi", seed=0)
    with pytest.raises(psi.PSIUsageError, match="only the leader"):
        psi.intersect([1], channel=net.channel("a"), reveal="b", leader="a", workers=0)


def test_multi_party_peer_announcing_too_many_ids_is_refused() -> None:
    """A deviating third party announces 10^12 ids: every honest party refuses before the ring."""
    names = ["a", "b", "c"]
    net = InMemoryNetwork(names, job_id="mpsi", seed=0)

    def evil(ch: Any) -> None:
        hello = ch.recv("a", "psi/hello")
        bloated = psi._common.Hello(**{**hello.__dict__, "n": 10**12})
        ch.broadcast("psi/hello", bloated, peers=["a", "b"])
        ch.recv("a", "psi/ring/a", timeout=30)  # never reached: a refuses first

    def honest(ch: Any) -> Any:
        return psi.intersect([1, 2, 3], channel=ch, workers=0, timeout=5.0, max_peer_ids=1000)

    with pytest.raises(psi.PSIProtocolError, match="c announces 1000000000000 ids"):
        run_parties({"a": honest, "b": honest, "c": evil}, network=net, timeout=60)
