"""The payload hash list: the same digest however the payload is split, hashed or streamed."""

from __future__ import annotations

import hashlib
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.digest import BLOCK_BYTES, PayloadHasher, payload_digest


def _reference(data: bytes) -> bytes:
    blocks = [data[i : i + BLOCK_BYTES] for i in range(0, len(data), BLOCK_BYTES)]
    inner = b"".join(hashlib.sha256(b).digest() for b in blocks)
    return hashlib.sha256(b"vfl/payload/v1" + len(data).to_bytes(8, "big") + inner).digest()


@settings(max_examples=25, deadline=None)
@given(
    size=st.sampled_from(
        [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, BLOCK_BYTES + 1, 3 * BLOCK_BYTES + 5]
    ),
    cuts=st.lists(st.integers(0, 4 * BLOCK_BYTES), max_size=5),
)
def test_any_split_gives_the_reference_digest(size: int, cuts: list[int]) -> None:
    data = os.urandom(size)
    points = sorted({c for c in cuts if c < size})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, size], strict=True)]
    hasher = PayloadHasher()
    for piece in pieces:
        hasher.update(piece)
    assert hasher.size == size
    assert hasher.digest() == payload_digest(pieces) == _reference(data)


def test_parallel_path_matches_and_size_is_bound() -> None:
    data = os.urandom(9 * BLOCK_BYTES + 17)  # above the threshold for threaded hashing
    assert payload_digest([memoryview(data)]) == _reference(data)
    assert payload_digest([data[:5], data[5:]]) == _reference(data)
    assert payload_digest([b""]) != payload_digest([b"\x00"])
