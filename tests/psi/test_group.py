"""The group layer: ristretto255 (RFC 9496 vectors), hashing ids into it, commutative blinding,
the multi-party rekeying, refusal of invalid encodings and of the identity, and tag lengths."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psi import PSIProtocolError, PSIUsageError, _group

VECTORS = json.loads((Path(__file__).parent / "vectors" / "ristretto255_rfc9496.json").read_text())
SALT = bytes(range(32))
PREFIX = _group.hash_prefix(SALT)
#: Order of ristretto255 (RFC 9496, section 4).
L = (1 << 252) + 27742317777372353535851937790883648493
#: 64-byte seeds of nonzero scalars (a zero seed is refused; see the test below).
seeds = st.integers(1, L - 1).map(lambda i: i.to_bytes(64, "little"))
ids = st.binary(min_size=0, max_size=40)


def _scalar(i: int) -> bytes:
    return i.to_bytes(32, "little")


def test_rfc9496_hash_to_group_vectors() -> None:
    """Appendix A.3: element = from_hash(SHA-512(input)); our hash with an empty prefix is that."""
    for case in VECTORS["hash_to_group_sha512"]:
        assert _group.hash_to_point(b"", case["input"].encode()).hex() == case["element"]


def test_rfc9496_multiples_of_the_generator() -> None:
    """Appendix A.1: [i] B for i = 1..15, through the same multiplication that blinds."""
    multiples = VECTORS["multiples_of_generator"]
    generator = bytes.fromhex(multiples[1])
    for i, expected in enumerate(multiples[1:], start=1):
        assert _group.blind(_scalar(i), generator).hex() == expected
        assert _group.is_valid_point(bytes.fromhex(expected))


@pytest.mark.parametrize("encoding", VECTORS["invalid_encodings"])
def test_rfc9496_invalid_encodings_are_refused(encoding: str) -> None:
    """Appendix A.2: non-canonical, negative, non-square and s = -1 encodings."""
    point = bytes.fromhex(encoding)
    assert not _group.is_valid_point(point)
    with pytest.raises(PSIProtocolError, match="not a canonical ristretto255 encoding"):
        _group.blind(_scalar(7), point)


def test_identity_is_refused() -> None:
    with pytest.raises(PSIProtocolError, match="identity"):
        _group.blind(_scalar(7), bytes(32))
    generator = bytes.fromhex(VECTORS["multiples_of_generator"][1])
    with pytest.raises(PSIProtocolError, match="identity"):
        _group.blind(_scalar(L), generator)  # [l] B is the identity


def test_hash_is_sha512_of_prefix_and_id_mapped_into_the_group() -> None:
    expected = _group.hash_to_point(b"", PREFIX + b"alice")
    assert _group.hash_to_point(PREFIX, b"alice") == expected
    assert _group.is_valid_point(expected)
    assert PREFIX.startswith(bytes([len(_group.DOMAIN)]) + _group.DOMAIN)
    assert hashlib.sha512(PREFIX + b"alice").digest() != expected


def test_salt_separates_sessions() -> None:
    other = _group.hash_prefix(bytes(32))
    assert _group.hash_to_point(PREFIX, b"x") != _group.hash_to_point(other, b"x")
    with pytest.raises(PSIUsageError):
        _group.hash_prefix(b"short")


@settings(max_examples=25, deadline=None)
@given(sa=seeds, sb=seeds, item=ids)
def test_blinding_commutes(sa: bytes, sb: bytes, item: bytes) -> None:
    a, b = _group.scalar_from_seed(sa), _group.scalar_from_seed(sb)
    u = _group.hash_to_point(PREFIX, item)
    ab = _group.blind(b, _group.blind(a, u))
    assert ab == _group.blind(a, _group.blind(b, u))
    assert _group.hash_and_blind(a, PREFIX, [item]) == _group.blind(a, u)
    assert _group.blind_truncate(a, u, 11) == _group.blind(a, u)[:11]


@settings(max_examples=15, deadline=None)
@given(sk=seeds, sr=seeds, item=ids)
def test_rekey_replaces_the_one_time_scalar(sk: bytes, sr: bytes, item: bytes) -> None:
    k, r = _group.scalar_from_seed(sk), _group.scalar_from_seed(sr)
    u = _group.hash_to_point(PREFIX, item)
    assert _group.rekey(k, r, _group.blind(r, u)) == _group.blind(k, u)


def test_scalars_are_reduced_below_the_group_order() -> None:
    s = _group.scalar_from_seed(b"\xff" * 64)
    assert 0 < int.from_bytes(s, "little") < L
    assert int.from_bytes(s, "little") == int.from_bytes(b"\xff" * 64, "little") % L
    with pytest.raises(PSIUsageError, match="64 bytes"):
        _group.scalar_from_seed(bytes(32))
    with pytest.raises(PSIUsageError, match="zero"):
        _group.scalar_from_seed(L.to_bytes(64, "little"))


def test_malformed_point_buffers_are_rejected() -> None:
    with pytest.raises(PSIProtocolError, match="multiple of 32"):
        _group.blind(_scalar(3), bytes(33))
    with pytest.raises(PSIUsageError, match="32 bytes"):
        _group.blind(bytes(31), bytes(32))


def test_tag_bytes_covers_41_bits_plus_log_pairs() -> None:
    # 40 statistical bits, plus one: bit 0 of a canonical encoding is always zero.
    assert _group.tag_bytes(10**6, 10**6) == 11  # ceil((41 + 39.86) / 8)
    assert _group.tag_bytes(1, 1) == 6
    assert _group.tag_bytes(10**9, 10**9, 10**9) == 17
    assert _group.tag_bytes(2**200, 2**200) == 32
