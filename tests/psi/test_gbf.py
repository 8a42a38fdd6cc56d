"""Garbled Bloom filters: members look up their value, everything else looks up noise."""

from __future__ import annotations

import numpy as np

from crypto.random import SeededRandom
from psi import _gbf


def _keys(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def test_members_look_up_their_values() -> None:
    rng = SeededRandom(1)
    keys = _keys("m", 500)
    values = np.frombuffer(rng.random_bytes(500 * 6), dtype=np.uint8).reshape(500, 6)
    m = _gbf.gbf_rows(len(keys))
    table = _gbf.build(_gbf.positions(keys, m=m, seed=b"s"), values, m=m, rng=rng)
    assert table.shape == (m + 1, 6) and not table[m].any()
    np.testing.assert_array_equal(_gbf.lookup(table, _gbf.positions(keys, m=m, seed=b"s")), values)


def test_non_members_look_up_noise() -> None:
    rng = SeededRandom(2)
    keys = _keys("m", 300)
    values = np.zeros((300, 8), dtype=np.uint8)  # every member maps to zero
    m = _gbf.gbf_rows(len(keys))
    table = _gbf.build(_gbf.positions(keys, m=m, seed=b"s"), values, m=m, rng=rng)
    others = _gbf.lookup(table, _gbf.positions(_keys("x", 300), m=m, seed=b"s"))
    assert not (~others.any(axis=1)).any()  # no outsider hits zero
    # and the table's bytes are close to uniform
    assert abs(float(table[:m].mean()) - 127.5) < 3.0


def test_repeated_positions_use_the_zero_sentinel() -> None:
    pos = _gbf.positions(_keys("k", 50), m=7, seed=b"s")  # tiny table: many repeats per row
    assert pos.max() == 7
    assert all(len(set(row[row < 7].tolist())) == int((row < 7).sum()) for row in pos)
