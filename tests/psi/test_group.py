"""The group layer: hashing into u-coordinates, commutative X25519 blinding, low-order rejection,
the unclamped ladder of the multi-party protocol, and tag lengths."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from psi import PSIProtocolError, PSIUsageError, _group, _ladder

SALT = bytes(range(32))
PREFIX = _group.hash_prefix(SALT)
scalars = st.binary(min_size=32, max_size=32)
ids = st.binary(min_size=0, max_size=40)

# u-coordinates of small-order points on Curve25519 and its twist (RFC 7748 section 6.1 notes,
# and the well-known list used by libsodium's blocklist).
LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    (1 << 255) - 19 - 1,
    (1 << 255) - 19,
    (1 << 255) - 19 + 1,
]


def test_hash_to_u_is_sha512_256_of_prefix_and_id_with_top_bit_cleared() -> None:
    digest = bytearray(hashlib.new("sha512_256", PREFIX + b"alice").digest())
    digest[31] &= 0x7F
    assert _group.hash_to_u(PREFIX, b"alice") == bytes(digest)
    assert PREFIX.startswith(bytes([len(_group.DOMAIN)]) + _group.DOMAIN)


def test_salt_separates_sessions() -> None:
    other = _group.hash_prefix(bytes(32))
    assert _group.hash_to_u(PREFIX, b"x") != _group.hash_to_u(other, b"x")
    with pytest.raises(PSIUsageError):
        _group.hash_prefix(b"short")


@settings(max_examples=25, deadline=None)
@given(a=scalars, b=scalars, item=ids)
def test_blinding_commutes_on_curve_and_twist(a: bytes, b: bytes, item: bytes) -> None:
    u = _group.hash_to_u(PREFIX, item)
    ab = _group.blind(b, _group.blind(a, u))
    ba = _group.blind(a, _group.blind(b, u))
    assert ab == ba
    assert _group.hash_and_blind(a, PREFIX, [item]) == _group.blind(a, u)


def test_hashed_points_fall_on_both_curve_and_twist() -> None:
    orders = {_ladder.subgroup_order(_group.hash_to_u(PREFIX, str(i).encode())) for i in range(64)}
    assert orders == {_ladder.L_CURVE, _ladder.L_TWIST}


@pytest.mark.parametrize("u", LOW_ORDER)
def test_low_order_inputs_are_rejected(u: int) -> None:
    point = (u % (1 << 256)).to_bytes(32, "little")
    with pytest.raises(PSIProtocolError, match="all-zero"):
        _group.blind(bytes([7]) * 32, point)


def test_malformed_point_buffers_are_rejected() -> None:
    with pytest.raises(PSIProtocolError, match="multiple of 32"):
        _group.blind(bytes(32), bytes(33))


def test_clamp_matches_rfc7748() -> None:
    k = _group.clamp_scalar(b"\xff" * 32)
    assert k[0] == 0xF8 and k[31] == 0x7F
    assert _group.clamp_scalar(bytes(32))[31] == 0x40


def test_tag_bytes_covers_40_bits_plus_log_pairs() -> None:
    assert _group.tag_bytes(10**6, 10**6) == 10  # ceil((40 + 39.86) / 8)
    assert _group.tag_bytes(1, 1) == 5
    assert _group.tag_bytes(10**9, 10**9, 10**9) == 17
    assert _group.tag_bytes(2**200, 2**200) == 32


@settings(max_examples=10, deadline=None)
@given(k=scalars, r=scalars, item=ids)
def test_strip_and_rekey_replaces_the_one_time_scalar(k: bytes, r: bytes, item: bytes) -> None:
    u = _group.hash_to_u(PREFIX, item)
    assert _ladder.strip_and_rekey(k, r, _group.blind(r, u)) == _group.blind(k, u)


def test_unclamped_ladder_matches_x25519_for_clamped_scalars() -> None:
    k = _group.clamp_scalar(hashlib.sha256(b"k").digest())
    u = _group.hash_to_u(PREFIX, b"id")
    assert _ladder.ladder(int.from_bytes(k, "little"), u) == _group.blind(k, u)
    assert (_ladder.L_TWIST * 4) + (_ladder.L_CURVE * 8) == 2 * (_ladder.P + 1)


@settings(max_examples=25, deadline=None)
@given(k=scalars, u=st.binary(min_size=32, max_size=32))
def test_libsodium_and_openssl_backends_agree(k: bytes, u: bytes) -> None:
    try:
        expected = _group.multiplier(k, backend="openssl")(u)
    except ValueError:
        with pytest.raises(RuntimeError):
            _group.multiplier(k, backend="libsodium")(u)
        return
    assert _group.multiplier(k, backend="libsodium")(u) == expected


@pytest.mark.parametrize("u", LOW_ORDER)
def test_both_backends_refuse_low_order_points(u: int) -> None:
    point = (u % (1 << 256)).to_bytes(32, "little")
    with pytest.raises(ValueError):
        _group.multiplier(bytes([9]) * 32, backend="openssl")(point)
    with pytest.raises(RuntimeError):
        _group.multiplier(bytes([9]) * 32, backend="libsodium")(point)


def test_default_backend_is_libsodium() -> None:
    assert _group.BACKEND == "libsodium"
