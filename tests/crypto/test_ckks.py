"""Tests of crypto.ckks: presets, layout, round trips, identities, serialisation, misuse.

SEAL's randomness cannot be seeded, so there are no known-answer vectors: correctness is checked
against numpy in the same test. One context per module keeps the suite fast.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crypto.ckks import PRESETS, CKKSBatch, CKKSContext, CKKSPreset, get_preset
from crypto.ckks._layout import (
    Chunk,
    pack,
    plain_for_add,
    plan,
    unpack_into,
    zero_sum_shares,
)
from crypto.ckks._presets import security_bits
from crypto.ckks._wire import encode_batch
from crypto.errors import CryptoUsageError, InvalidCiphertext
from crypto.random import SeededRandom

FAST = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def owner() -> CKKSContext:
    return CKKSContext.generate()


@pytest.fixture(scope="module")
def peer(owner: CKKSContext) -> CKKSContext:
    return CKKSContext.from_bytes(owner.to_bytes())


@pytest.fixture(scope="module")
def other_owner() -> CKKSContext:
    return CKKSContext.generate()


def _matrix(rows: int, cols: int, seed: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=(rows, cols))


# --- presets ---------------------------------------------------------------------------------


def test_presets_meet_128_bit_security_per_he_standard() -> None:
    default = get_preset("default")
    assert (default.poly_modulus_degree, default.coeff_mod_bit_sizes) == (8192, (60, 40, 40, 60))
    assert default.scale_bits == 40 and default.slot_count == 4096 and default.depth == 2
    assert PRESETS["deep"].poly_modulus_degree == 16384 and PRESETS["deep"].depth == 6
    for preset in PRESETS.values():
        assert preset.security_bits >= 128


def test_security_table_bounds() -> None:
    assert security_bits(poly_modulus_degree=8192, total_modulus_bits=218) == 128
    assert security_bits(poly_modulus_degree=8192, total_modulus_bits=219) == 0
    assert security_bits(poly_modulus_degree=8192, total_modulus_bits=118) == 256
    assert security_bits(poly_modulus_degree=1000, total_modulus_bits=10) == 0


def test_insecure_or_unknown_preset_is_refused() -> None:
    with pytest.raises(CryptoUsageError, match="below 128-bit"):
        CKKSPreset(
            name="weak",
            poly_modulus_degree=4096,
            coeff_mod_bit_sizes=(60, 40, 40, 60),
            scale_bits=40,
        )
    with pytest.raises(CryptoUsageError, match="unknown CKKS preset"):
        CKKSContext.generate(preset="tiny")


# --- layout (pure) ---------------------------------------------------------------------------


def test_plan_packs_columns_into_blocks() -> None:
    (chunk,) = plan(256, 16, slot_count=4096)
    assert chunk.blocks == 16 and len(chunk.columns) == 1 and chunk.width == 4096
    (chunk,) = plan(4096, 16, slot_count=4096)
    assert chunk.blocks == 1 and len(chunk.columns) == 16
    first, second = plan(5000, 16, slot_count=4096)
    assert (first.row_start, first.rows, second.row_start, second.rows) == (0, 4096, 4096, 904)
    assert second.blocks == 4 and len(second.columns) == 4
    (chunk,) = plan(300, 16, slot_count=4096)
    assert chunk.blocks == 13 and chunk.columns[1][-1] == -1


@given(
    rows=st.integers(1, 50),
    cols=st.integers(1, 9),
    slots=st.sampled_from([8, 32, 64]),
    seed=st.integers(0, 9),
)
@settings(max_examples=60, deadline=None)
def test_pack_unpack_and_plain_for_add_are_inverse(
    rows: int, cols: int, slots: int, seed: int
) -> None:
    x = _matrix(rows, cols, seed)
    out = np.zeros_like(x)
    added = np.zeros_like(x)
    for chunk in plan(rows, cols, slot_count=slots):
        assert chunk.column_unique and chunk.width <= slots
        unpack_into(out, pack(x, chunk), chunk)
        unpack_into(added, plain_for_add(x, chunk), chunk)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(added, x)


def test_plain_for_add_counts_a_shared_column_once() -> None:
    chunk = Chunk(row_start=0, rows=2, columns=((0, 0, 0),))
    x = np.array([[1.0], [2.0]])
    out = np.zeros_like(x)
    unpack_into(out, plain_for_add(x, chunk), chunk)
    np.testing.assert_array_equal(out, x)


def test_zero_sum_shares() -> None:
    shares = zero_sum_shares(16, 256, bits=24, rng=SeededRandom(3))
    assert np.max(np.abs(shares.sum(axis=0))) < 1e-6
    assert np.max(np.abs(shares[:-1])) < 2.0**24
    assert np.median(np.abs(shares[:-1])) > 2.0**20
    np.testing.assert_array_equal(shares, zero_sum_shares(16, 256, bits=24, rng=SeededRandom(3)))
    assert not zero_sum_shares(1, 5, bits=24, rng=SeededRandom(3)).any()


# --- must show -------------------------------------------------------------------------------


def test_must_show_256x16_times_16x8(owner: CKKSContext, peer: CKKSContext) -> None:
    x, w = _matrix(256, 16, 0), _matrix(16, 8, 1)
    sent = CKKSBatch.encrypt(peer, x).to_bytes()
    assert len(sent) / x.size < 2048  # target: < 2 KB per input value
    assert len(sent) / x.size < 90  # one fully packed ciphertext (~81 B per value)
    product = CKKSBatch.from_bytes(sent, context=peer).matmul_plain(w)
    assert product.shape == (256, 8)
    result = CKKSBatch.from_bytes(product.to_bytes(), context=owner).decrypt()
    assert np.max(np.abs(result - x @ w)) <= 1e-4


# --- round trips and identities --------------------------------------------------------------


@FAST
@given(
    x=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40),
        elements=st.floats(-1000, 1000, allow_nan=False),
    )
)
def test_encrypt_decrypt_round_trip(owner: CKKSContext, x: np.ndarray) -> None:
    batch = CKKSBatch.encrypt(owner, x)
    assert batch.shape == x.shape
    assert np.max(np.abs(batch.decrypt() - x)) <= 1e-4


@FAST
@given(
    rows=st.integers(1, 30),
    dim=st.integers(1, 6),
    out=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_matmul_and_add_identities(
    owner: CKKSContext, rows: int, dim: int, out: int, seed: int
) -> None:
    a, b = _matrix(rows, dim, seed), _matrix(rows, dim, seed + 1)
    w, m = _matrix(dim, out, seed + 2), _matrix(rows, out, seed + 3, scale=100.0)
    ea, eb = CKKSBatch.encrypt(owner, a), CKKSBatch.encrypt(owner, b)
    assert np.max(np.abs((ea + eb).decrypt() - (a + b))) <= 1e-4
    assert np.max(np.abs((ea + b).decrypt() - (a + b))) <= 1e-4
    assert np.max(np.abs((b + ea).decrypt() - (a + b))) <= 1e-4
    left = (ea.matmul_plain(w) + eb.matmul_plain(w)).add_plain(m)
    right = (ea + eb) @ w + m
    expected = (a + b) @ w + m
    assert np.max(np.abs(left.decrypt() - expected)) <= 1e-4
    assert np.max(np.abs(right.decrypt() - expected)) <= 1e-4


def test_rows_beyond_slot_count_are_chunked(owner: CKKSContext) -> None:
    rows = owner.slot_count + 3
    x, w = _matrix(rows, 3, 7), _matrix(3, 2, 8)
    batch = CKKSBatch.encrypt(owner, x)
    assert batch.n_ciphertexts == 4  # 3 single-column ciphertexts + 1 packed remainder
    assert np.max(np.abs(batch.decrypt() - x)) <= 1e-4
    assert np.max(np.abs((batch @ w).decrypt() - x @ w)) <= 1e-4


def test_bias_row_broadcasts(owner: CKKSContext) -> None:
    x, bias = _matrix(5, 3, 1), np.array([1.0, -2.0, 3.0])
    assert (
        np.max(np.abs(CKKSBatch.encrypt(owner, x).add_plain(bias).decrypt() - (x + bias))) <= 1e-4
    )


def test_zero_weights_give_zero(owner: CKKSContext) -> None:
    x = _matrix(8, 3, 2)
    out = CKKSBatch.encrypt(owner, x).matmul_plain(np.zeros((3, 2)))
    assert np.max(np.abs(out.decrypt())) <= 1e-4


def test_blocks_hide_partial_products(owner: CKKSContext) -> None:
    x, w = _matrix(64, 4, 3), _matrix(4, 1, 4)
    product = CKKSBatch.encrypt(owner, x).matmul_plain(w, rng=SeededRandom(5))
    (row,) = product._cts
    blocks = np.asarray(row[0].decrypt(owner._ts.secret_key())).reshape(4, 64)
    partials = x * w[:, 0]
    assert np.min(np.abs(blocks - partials.T)) > 1.0  # shares of magnitude up to 2**24
    assert np.max(np.abs(blocks.sum(axis=0) - x @ w[:, 0])) <= 1e-4


def test_product_is_rerandomised(owner: CKKSContext) -> None:
    batch = CKKSBatch.encrypt(owner, _matrix(4096, 1, 5))  # one block: no shares
    w = np.array([[2.0]])
    assert batch.matmul_plain(w).to_bytes() != batch.matmul_plain(w).to_bytes()


def test_depth_is_enforced(owner: CKKSContext) -> None:
    x = _matrix(owner.slot_count, 1, 6)
    twice = CKKSBatch.encrypt(owner, x) @ np.array([[0.5]]) @ np.array([[2.0]])
    assert np.max(np.abs(twice.decrypt() - x)) <= 1e-4
    with pytest.raises(CryptoUsageError, match="depth 2"):
        twice @ np.array([[1.0]])


def test_product_with_shared_blocks_cannot_be_multiplied_again(owner: CKKSContext) -> None:
    product = CKKSBatch.encrypt(owner, _matrix(8, 2, 1)) @ np.ones((2, 2))
    with pytest.raises(CryptoUsageError, match="already a product"):
        product @ np.ones((2, 1))


def test_decrypt_for_release_rounds_to_a_grid(owner: CKKSContext) -> None:
    x = _matrix(32, 2, 9)
    batch = CKKSBatch.encrypt(owner, x)
    released = batch.decrypt_for_release(precision_bits=16, rng=SeededRandom(1))
    scaled = released * 2.0**16
    np.testing.assert_array_equal(scaled, np.round(scaled))
    assert np.max(np.abs(released - x)) <= 2.0**-16 + 1e-6
    again = batch.decrypt_for_release(precision_bits=16, rng=SeededRandom(1))
    np.testing.assert_array_equal(released, again)


# --- serialisation ---------------------------------------------------------------------------


def test_context_round_trip(owner: CKKSContext) -> None:
    public = CKKSContext.from_bytes(owner.to_bytes())
    assert not public.has_secret_key and public.fingerprint == owner.fingerprint
    assert public.preset == owner.preset
    secret = CKKSContext.from_bytes(owner.to_bytes(include_secret_key=True))
    assert secret.has_secret_key and secret.fingerprint == owner.fingerprint
    x = _matrix(3, 2, 0)
    assert np.max(np.abs(CKKSBatch.encrypt(public, x).decrypt(secret_context=secret) - x)) < 1e-4
    assert owner.public_context().fingerprint == owner.fingerprint
    assert "secret" in repr(owner) and "public" in repr(public)
    with pytest.raises(CryptoUsageError, match="no secret key"):
        public.to_bytes(include_secret_key=True)


def test_batch_round_trip(owner: CKKSContext, peer: CKKSContext) -> None:
    x = _matrix(300, 5, 4)
    data = CKKSBatch.encrypt(peer, x).to_bytes()
    loaded = CKKSBatch.from_bytes(data, context=peer)
    assert loaded.shape == (300, 5) and loaded.to_bytes() == data
    assert np.max(np.abs(CKKSBatch.from_bytes(data, context=owner).decrypt() - x)) <= 1e-4


def _reframe(data: bytes, body: bytes) -> bytes:
    """Same header, new body with a valid digest: simulates a crafted (not corrupted) payload."""
    return data[:42] + hashlib.sha256(body).digest() + body


def test_truncated_or_tampered_batch_is_invalid(owner: CKKSContext) -> None:
    data = CKKSBatch.encrypt(owner, _matrix(10, 3, 1)).to_bytes()
    for cut in (0, 5, 9, 40, 74, 80, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidCiphertext):
            CKKSBatch.from_bytes(data[:cut], context=owner)
    for index in (0, 8, 20, 50, 80, len(data) // 2, len(data) - 1):
        tampered = bytearray(data)
        tampered[index] ^= 0x01
        with pytest.raises(InvalidCiphertext):
            CKKSBatch.from_bytes(bytes(tampered), context=owner)
    with pytest.raises(InvalidCiphertext):
        CKKSBatch.from_bytes(data + b"\x00", context=owner)
    body = data[74:]
    garbage = bytearray(body)
    garbage[-100:] = bytes(100)  # valid digest, broken TenSEAL stream
    with pytest.raises(InvalidCiphertext, match="malformed ciphertext"):
        CKKSBatch.from_bytes(_reframe(data, bytes(garbage)), context=owner)
    bad_column = (
        body[:12] + struct.pack(">IIII", 0, 10, 1, 3) + struct.pack(">iii", 0, 1, 7) + body[40:]
    )
    with pytest.raises(InvalidCiphertext, match="out of range"):
        CKKSBatch.from_bytes(_reframe(data, bad_column), context=owner)


def test_layout_size_mismatch_is_invalid(owner: CKKSContext) -> None:
    small = CKKSBatch.encrypt(owner, _matrix(2, 1, 0))
    (row,) = small._cts
    forged = encode_batch(
        fingerprint=owner.fingerprint,
        shape=(3, 1),
        chunks=(Chunk(row_start=0, rows=3, columns=((0,),)),),
        ciphertexts=[[bytes(row[0].serialize())]],
    )
    with pytest.raises(InvalidCiphertext, match="does not match its layout"):
        CKKSBatch.from_bytes(forged, context=owner)


def test_truncated_or_tampered_context_is_invalid(owner: CKKSContext) -> None:
    data = owner.to_bytes()
    for cut in (0, 8, 12, 20, 30, len(data) // 2):
        with pytest.raises(InvalidCiphertext):
            CKKSContext.from_bytes(data[:cut])
    wrong_version = data[:8] + b"\x00\x09" + data[10:]
    with pytest.raises(InvalidCiphertext, match="version"):
        CKKSContext.from_bytes(wrong_version)
    insecure = bytearray(data)
    insecure[19:23] = struct.pack(">I", 4096)  # header claims N = 4096 with 200-bit modulus
    with pytest.raises(InvalidCiphertext, match="insecure"):
        CKKSContext.from_bytes(bytes(insecure))
    lying = bytearray(data)
    lying[10] = 1  # claims a secret key that is not there
    with pytest.raises(InvalidCiphertext, match="key flags"):
        CKKSContext.from_bytes(bytes(lying))


# --- misuse ----------------------------------------------------------------------------------


def test_public_context_cannot_decrypt(owner: CKKSContext, peer: CKKSContext) -> None:
    batch = CKKSBatch.encrypt(peer, _matrix(4, 2, 0))
    with pytest.raises(CryptoUsageError, match="only the key owner can decrypt"):
        batch.decrypt()
    with pytest.raises(CryptoUsageError, match="only the key owner can decrypt"):
        batch.decrypt_for_release()
    with pytest.raises(CryptoUsageError, match="only the key owner can decrypt"):
        CKKSBatch.from_bytes(batch.to_bytes(), context=owner.public_context()).decrypt()


def test_shape_mismatch_is_a_usage_error(owner: CKKSContext) -> None:
    batch = CKKSBatch.encrypt(owner, _matrix(6, 3, 0))
    with pytest.raises(CryptoUsageError, match="shape mismatch"):
        batch @ np.ones((4, 2))
    with pytest.raises(CryptoUsageError, match="shape mismatch"):
        batch + CKKSBatch.encrypt(owner, _matrix(6, 2, 0))
    with pytest.raises(CryptoUsageError, match="shape mismatch"):
        batch.add_plain(np.ones((5, 3)))
    with pytest.raises(CryptoUsageError, match="2-D"):
        CKKSBatch.encrypt(owner, np.ones(3))
    with pytest.raises(CryptoUsageError, match="NaN"):
        CKKSBatch.encrypt(owner, np.array([[np.nan]]))
    with pytest.raises(CryptoUsageError, match="overflow"):
        CKKSBatch.encrypt(owner, np.array([[1e9]]))
    with pytest.raises(CryptoUsageError, match="at least one row"):
        CKKSBatch.encrypt(owner, np.ones((0, 3)))
    with pytest.raises(CryptoUsageError, match="different slot layouts"):
        batch @ np.ones((3, 3)) + batch


def test_wrong_context_is_detected(owner: CKKSContext, other_owner: CKKSContext) -> None:
    batch = CKKSBatch.encrypt(owner, _matrix(4, 2, 0))
    with pytest.raises(InvalidCiphertext, match="another context"):
        CKKSBatch.from_bytes(batch.to_bytes(), context=other_owner)
    with pytest.raises(CryptoUsageError, match="different contexts"):
        batch + CKKSBatch.encrypt(other_owner, _matrix(4, 2, 0))
    with pytest.raises(CryptoUsageError, match="not the context of this batch"):
        batch.decrypt(secret_context=other_owner)


# --- benchmark smoke test (vfl bench ckks) ---------------------------------------------------


def test_bench_ckks_runs_on_a_tiny_batch() -> None:
    import argparse
    import json

    from vfl.bench import ckks as bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--rows", "8", "--dim", "3", "--out-dim", "2"])
    args.baseline_rows, args.repeat = 2, 1
    result = bench.run(args)
    json.dumps(result)  # JSON-ready
    (size,) = result["sizes"]
    assert size["engine"]["max_abs_error_matmul"] <= 1e-4
    assert size["baseline"]["measured_rows"] == 2
    assert size["ratios"]["bytes_per_input_value_reduction"] > 1.0
    assert result["machine"]["cores"] and result["baseline"].startswith("one TenSEAL")
