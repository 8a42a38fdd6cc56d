"""Two-party ECDH-PSI over the in-memory transport: exact results, all reveal modes, alignment,
FATE's breast files (tests/data/fate), and the leakage table checked on the transcript."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

import psi
from crypto.random import SeededRandom
from protocols.errors import ChannelTimeout
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from psi import _group
from tests._data import fate_csv

GUEST = fate_csv("breast_hetero_guest_sample_id.csv")
HOST = fate_csv("breast_hetero_host_sample_id.csv")


def _sets(n_a: int, n_b: int, common: int, seed: int) -> tuple[list[int], list[int]]:
    rs = np.random.default_rng(seed)
    pool = rs.choice(10**12, n_a + n_b - common, replace=False).tolist()
    a = pool[:n_a]
    b = pool[:common] + pool[n_a:]
    rs.shuffle(b)
    return a, b


def _run(
    a: list[Any], b: list[Any], *, reveal: str = "all", seeds: tuple[int, int] = (1, 2), **kw: Any
) -> tuple[dict[str, psi.PSIResult], InMemoryNetwork]:
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)
    res = run_parties(
        {
            "bank": lambda ch: psi.intersect(
                a, channel=ch, reveal=reveal, rng=SeededRandom(seeds[0]), workers=0, **kw
            ),
            "retailer": lambda ch: psi.intersect(
                b, channel=ch, reveal=reveal, rng=SeededRandom(seeds[1]), workers=0, **kw
            ),
        },
        network=net,
        timeout=120,
    )
    return res, net


@pytest.mark.parametrize(
    ("n_a", "n_b", "common"), [(300, 200, 50), (1, 400, 1), (250, 0, 0), (64, 64, 64)]
)
def test_exact_intersection_in_the_same_order(n_a: int, n_b: int, common: int) -> None:
    a, b = _sets(n_a, n_b, common, seed=n_a + n_b)
    res, _ = _run(a, b, batch=97)  # a batch size that does not divide the inputs
    expected = set(a) & set(b)
    rows_a, rows_b = res["bank"].rows, res["retailer"].rows
    assert rows_a is not None and rows_b is not None
    members_a = [a[i] for i in rows_a]
    assert set(members_a) == expected and len(members_a) == len(expected)
    assert members_a == [b[i] for i in rows_b]
    assert res["bank"].size == res["retailer"].size == len(expected)


def test_reveal_to_one_party() -> None:
    a, b = _sets(200, 150, 40, seed=3)
    res, net = _run(a, b, reveal="retailer")
    assert res["bank"].size is None and res["bank"].rows is None
    rows = res["retailer"].rows
    assert rows is not None and {b[i] for i in rows} == set(a) & set(b)
    # The bank receives only the hello and the retailer's blinded ids: no tags, nothing derived
    # from its own ids.
    assert {m.topic for m in net.transcript.received_by("bank")} == {"psi/hello", "psi/blinded"}


def test_non_receiver_gets_nothing_it_can_link_to_its_ids() -> None:
    a, b = _sets(120, 100, 30, seed=4)
    res, net = _run(a, b, reveal="retailer")
    received = net.transcript.received_by("bank")
    points = np.concatenate([m.payload for m in received if m.topic == "psi/blinded"])
    assert points.shape == (len(b), 32)
    # Everything the bank can compute from its own ids without the retailer's scalar: the hashes.
    hello = {m.sender: m.payload for m in net.transcript.messages if m.topic == "psi/hello"}
    salt = psi._common.session_salt({p: h.salt_share for p, h in hello.items()})
    prefix = _group.hash_prefix(salt)
    own = {_group.hash_to_point(prefix, str(x).encode()) for x in a}
    assert not own & {bytes(p) for p in points}


def test_size_only_returns_shuffled_tags() -> None:
    a, b = _sets(200, 180, 60, seed=5)
    res_all, net_all = _run(a, b, reveal="all", seeds=(7, 8))
    res_size, net_size = _run(a, b, reveal="size", seeds=(7, 8))
    assert res_size["bank"].size == res_size["retailer"].size == 60
    assert res_size["bank"].rows is None and res_size["retailer"].rows is None

    def tags(net: InMemoryNetwork) -> np.ndarray:
        got = [m.payload for m in net.transcript.received_by("bank") if m.topic == "psi/tags"]
        return np.concatenate(got)

    # Same seeds -> same scalars and the same own permutation at the bank, so in "all" mode the
    # returned tags are in the bank's own (secret) order; in size-only mode the retailer
    # re-shuffles them: same multiset, positions no longer link tags to the bank's ids.
    t_all, t_size = tags(net_all), tags(net_size)
    assert sorted(map(bytes, t_all)) == sorted(map(bytes, t_size))
    same_position = np.all(t_all == t_size, axis=1).mean()
    assert same_position < 0.1


def test_tags_are_truncated_to_the_statistical_bound() -> None:
    a, b = _sets(100, 100, 10, seed=6)
    res, net = _run(a, b)
    t = _group.tag_bytes(100, 100)
    assert res["bank"].tag_bytes == t == 7  # ceil((40 + 1 + log2(10^4)) / 8)
    assert all(m.payload.shape[1] == t for m in net.transcript.messages if m.topic == "psi/tags")


def test_mixed_id_types_match() -> None:
    a = [1, 2, 3, "4", 5.0]
    b = ["1", np.int64(3), " 5 ", 6]
    res, _ = _run(a, b)
    rows = res["bank"].rows
    assert rows is not None and sorted(str(a[i]) for i in rows) == ["1", "3", "5.0"]


def test_mismatched_reveal_is_a_protocol_error() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)
    with pytest.raises(psi.PSIProtocolError, match="reveal mode mismatch"):
        run_parties(
            {
                "bank": lambda ch: psi.intersect([1], channel=ch, reveal="all", workers=0),
                "retailer": lambda ch: psi.intersect([1], channel=ch, reveal="size", workers=0),
            },
            network=net,
            timeout=30,
        )


def test_unknown_reveal_party_is_a_usage_error() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)
    with pytest.raises(psi.PSIUsageError, match="reveal must be"):
        psi.intersect([1], channel=net.channel("bank"), reveal="nobody", workers=0)


def test_align_on_the_fate_breast_files() -> None:
    guest = pd.read_csv(GUEST)
    host = pd.read_csv(HOST)
    with pytest.raises(psi.PSIUsageError, match="duplicate rows"):
        net = InMemoryNetwork(["guest", "host"], job_id="breast", seed=0)
        run_parties(
            {
                "guest": lambda ch: psi.align(guest, channel=ch, id_column="id", workers=0),
                "host": lambda ch: psi.align(host, channel=ch, id_column="id", workers=0),
            },
            network=net,
            timeout=60,
        )
    net = InMemoryNetwork(["guest", "host"], job_id="breast", seed=0)
    out = run_parties(
        {
            "guest": lambda ch: psi.align(
                guest, channel=ch, id_column="id", duplicates="first", workers=0
            ),
            "host": lambda ch: psi.align(host, channel=ch, id_column="id", workers=0),
        },
        network=net,
        timeout=60,
    )
    g, h = out["guest"], out["host"]
    expected = set(guest["id"]) & set(host["id"])
    assert 0 < len(expected) < len(set(guest["id"]))
    assert list(g["id"]) == list(h["id"]) and set(g["id"]) == expected and len(g) == len(expected)
    first_rows = guest.drop_duplicates("id", keep="first").set_index("id")
    assert (g.set_index("id")["mock_id"] == first_rows.loc[g["id"], "mock_id"]).all()
    assert list(g.columns) == list(guest.columns) and list(h.columns) == list(host.columns)


def test_align_rejects_unknown_columns_and_size_mode() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)
    df = pd.DataFrame({"id": [1, 2]})
    with pytest.raises(psi.PSIUsageError, match="id column 'cid' not found"):
        psi.align(df, channel=net.channel("bank"), id_column="cid")
    with pytest.raises(psi.PSIUsageError, match="use psi.intersect"):
        psi.align(df, channel=net.channel("bank"), id_column="id", reveal="size")


@pytest.mark.parametrize(
    ("point", "why"),
    [
        (bytes(32), "identity"),  # the identity's encoding: its multiples are the identity
        (b"\xff" * 31 + b"\x7f", "not a canonical"),  # RFC 9496 A.2: non-canonical s
        (
            bytes.fromhex("26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371"),
            "not a",
        ),
    ],
)
def test_tampered_peer_point_is_refused(point: bytes, why: str) -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)

    def evil(ch: Any) -> None:
        hello = ch.recv("bank", "psi/hello")
        ch.send("bank", "psi/hello", psi._common.Hello(**{**hello.__dict__, "n": 1}))
        ch.send("bank", "psi/blinded", np.frombuffer(point, dtype=np.uint8).reshape(1, 32))

    with pytest.raises(psi.PSIProtocolError, match=why):
        run_parties(
            {"bank": lambda ch: psi.intersect([1, 2], channel=ch, workers=0), "retailer": evil},
            network=net,
            timeout=30,
        )


@pytest.mark.parametrize(
    ("n", "limit", "refused"), [(10**12, None, True), (6, 5, True), (5, 5, False)]
)
def test_peer_announced_set_size_is_bounded_before_allocating(
    n: int, limit: int | None, refused: bool
) -> None:
    """A deviating peer announces a huge ``Hello.n``: refused with a clear error, nothing sized."""
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-test", seed=0)
    kw = {} if limit is None else {"max_peer_ids": limit}
    sizes: list[int] = []

    def evil(ch: Any) -> None:
        hello = ch.recv("bank", "psi/hello")
        ch.send("bank", "psi/hello", psi._common.Hello(**{**hello.__dict__, "n": n}))
        ch.recv("bank", "psi/blinded", timeout=30)  # the bank went on: it accepted the size
        sizes.append(n)

    def bank(ch: Any) -> psi.PSIResult:
        return psi.intersect([1, 2], channel=ch, workers=0, timeout=1.0, **kw)

    if refused:
        limit_text = str(limit if limit is not None else psi._common.DEFAULT_MAX_PEER_IDS)
        with pytest.raises(psi.PSIProtocolError, match=f"announces {n} ids.*{limit_text}"):
            run_parties({"bank": bank, "retailer": evil}, network=net, timeout=30)
        assert not sizes
    else:
        with pytest.raises(ChannelTimeout):  # the honest bank then waits on the silent peer
            run_parties({"bank": bank, "retailer": evil}, network=net, timeout=30)
        assert sizes == [n]


@pytest.mark.slow
def test_process_pool_path_matches_plaintext() -> None:
    a, b = _sets(20_000, 15_000, 5_000, seed=9)
    net = InMemoryNetwork(["bank", "retailer"], job_id="psi-pool", seed=0)
    res = run_parties(
        {
            "bank": lambda ch: psi.intersect(a, channel=ch, workers=2, batch=4096),
            "retailer": lambda ch: psi.intersect(b, channel=ch, workers=2, batch=4096),
        },
        network=net,
        timeout=300,
    )
    rows = res["bank"].rows
    assert rows is not None and {a[i] for i in rows} == set(a) & set(b)
