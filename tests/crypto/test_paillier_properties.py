"""Property tests (hypothesis) for crypto.paillier with a 512-bit test key."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from crypto.errors import CryptoUsageError
from crypto.paillier import (
    EncryptedArray,
    FixedPointEncoding,
    ObfuscatorPool,
    PackedEncryptedArray,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)
from crypto.random import SeededRandom

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLOATS = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
SMALL_ARRAYS = hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4), elements=FLOATS)
EPS = 2.0**-31


@functools.cache
def keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_keypair(512, rng=SeededRandom(2026), insecure_allow_small_keys=True)


def close(actual: np.ndarray, expected: np.ndarray, *, scale: float = 1.0) -> None:
    np.testing.assert_allclose(
        actual, expected, rtol=0, atol=EPS * scale * (1 + np.abs(expected).max(initial=0))
    )


@SETTINGS
@given(SMALL_ARRAYS)
def test_round_trip_any_shape(x: np.ndarray) -> None:
    pub, priv = keys()
    out = priv.decrypt(pub.encrypt(x))
    assert out.shape == x.shape and out.dtype == np.float64
    close(out, x)


@SETTINGS
@given(SMALL_ARRAYS, st.data())
def test_addition_identities(x: np.ndarray, data: st.DataObject) -> None:
    pub, priv = keys()
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=FLOATS))
    ex, ey = pub.encrypt(x), pub.encrypt(y)
    close(priv.decrypt(ex + ey), x + y)
    close(priv.decrypt(ex - ey), x - y)
    close(priv.decrypt(ex + y), x + y)
    close(priv.decrypt(y + ex), x + y)
    close(priv.decrypt(y - ex), y - x)
    close(priv.decrypt(-ex), -x)


@SETTINGS
@given(SMALL_ARRAYS, st.integers(min_value=-(2**40), max_value=2**40))
def test_integer_scalar_multiplication_is_exact_in_scale(x: np.ndarray, k: int) -> None:
    pub, priv = keys()
    enc = pub.encrypt(x)
    prod = enc * k
    assert prod.scale == enc.scale
    close(priv.decrypt(prod), x * k, scale=abs(k) + 1)


@SETTINGS
@given(SMALL_ARRAYS, FLOATS)
def test_float_scalar_multiplication_adds_scales(x: np.ndarray, k: float) -> None:
    pub, priv = keys()
    enc = pub.encrypt(x)
    prod = k * enc
    assert prod.scale == 2 * enc.scale
    close(priv.decrypt(prod), x * k, scale=abs(k) + 1e6)


@SETTINGS
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 3)), elements=FLOATS),
    st.integers(1, 3),
    st.integers(0, 2**32),
)
def test_matrix_products(a: np.ndarray, cols: int, seed: int) -> None:
    pub, priv = keys()
    v = np.random.default_rng(seed).normal(size=(a.shape[0], cols))
    enc = pub.encrypt(v)
    tol = 1e6 * np.abs(v).sum() + 1
    close(priv.decrypt(a.T @ enc), a.T @ v, scale=tol)
    close(priv.decrypt(enc.T @ a), v.T @ a, scale=tol)
    close(priv.decrypt(a[:, 0] @ enc), a[:, 0] @ v, scale=tol)
    close(priv.decrypt(enc[:, 0] @ a), v[:, 0] @ a, scale=tol)


def test_matrix_product_uses_bucket_method_and_matches_plain() -> None:
    pub, priv = keys()
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4))
    v = rng.normal(size=300)
    enc = pub.encrypt(v)
    out = x.T @ enc
    assert out.shape == (4,) and out.scale == 64
    close(priv.decrypt(out), x.T @ v, scale=1e3)
    ints = rng.integers(-(2**31), 2**31, size=(300, 2))
    close(priv.decrypt(ints.T @ enc), ints.T.astype(float) @ v, scale=2.0**31 * 300)


@SETTINGS
@given(SMALL_ARRAYS)
def test_sum_over_axes(x: np.ndarray) -> None:
    pub, priv = keys()
    enc = pub.encrypt(x)
    close(priv.decrypt(enc.sum()), np.array(x.sum()), scale=x.size + 1)
    for axis in range(x.ndim):
        close(priv.decrypt(enc.sum(axis=axis)), x.sum(axis=axis), scale=x.size + 1)


def test_indexing_reshape_transpose() -> None:
    pub, priv = keys()
    x = np.arange(12.0).reshape(3, 4) - 5.5
    enc = pub.encrypt(x)
    np.testing.assert_array_equal(priv.decrypt(enc[1]), x[1])
    np.testing.assert_array_equal(priv.decrypt(enc[1:, ::2]), x[1:, ::2])
    np.testing.assert_array_equal(priv.decrypt(enc[2, 3]), x[2, 3])
    np.testing.assert_array_equal(priv.decrypt(enc.T), x.T)
    np.testing.assert_array_equal(priv.decrypt(enc.reshape(4, 3)), x.reshape(4, 3))
    np.testing.assert_array_equal(priv.decrypt(enc.reshape((2, 6))), x.reshape(2, 6))
    assert len(enc) == 3 and enc.shape == (3, 4) and enc.ndim == 2 and enc.size == 12


@pytest.mark.parametrize("value", [0.0, -0.0, 1.0, -1.0, 2.0**-32, -(2.0**-32), 1e15, -1e15])
def test_encoding_edges(value: float) -> None:
    pub, priv = keys()
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(value)), np.array(value))


def test_encoding_maximum_and_overflow() -> None:
    pub, priv = keys()
    enc0 = FixedPointEncoding(precision_bits=0)
    top = pub.max_int
    top_f = float(top) if int(float(top)) <= top else float(np.nextafter(float(top), 0.0))
    out = priv.decrypt(pub.encrypt(np.array([top_f, -top_f]), encoding=enc0))
    np.testing.assert_array_equal(out, [top_f, -top_f])
    with pytest.raises(CryptoUsageError):
        pub.encrypt(float(top) * 4, encoding=enc0)
    half = pub.encrypt(float(top // 2), encoding=enc0)
    with pytest.raises(CryptoUsageError):
        half * 3
    with pytest.raises(CryptoUsageError):
        half + half + half


def test_integers_encode_exactly() -> None:
    pub, priv = keys()
    x = np.array([-(2**40), -1, 0, 1, 2**40], dtype=np.int64)
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(x)), x.astype(float))


def test_rerandomize_changes_ciphertexts_not_values() -> None:
    pub, priv = keys()
    x = np.array([1.25, -2.5])
    enc = pub.encrypt(x)
    fresh = enc.rerandomize()
    assert all(a != b for a, b in zip(enc.raw_ciphertexts(), fresh.raw_ciphertexts(), strict=True))
    np.testing.assert_array_equal(priv.decrypt(fresh), x)


@pytest.mark.parametrize("obfuscator", ["standard", "djn"])
def test_obfuscator_options_and_owner_encryption(obfuscator: str) -> None:
    pub, priv = keys()
    x = np.array([3.5, -7.25, 0.0])
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(x, obfuscator=obfuscator)), x)
    np.testing.assert_array_equal(priv.decrypt(priv.encrypt(x)), x)
    pool = ObfuscatorPool(pub, obfuscator=obfuscator)
    pool.fill(5)
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(x, pool=pool)), x)
    assert len(pool) == 2


def test_pool_never_hands_out_an_obfuscator_twice() -> None:
    pub, priv = keys()
    pool = ObfuscatorPool(pub, private_key=priv, rng=SeededRandom(3))
    pool.fill(20)
    taken = pool.take(7) + pool.take(13)
    assert len(set(int(t) for t in taken)) == 20
    assert len(pool) == 0
    with pytest.raises(CryptoUsageError):
        pool.take(1)
    with pytest.raises(CryptoUsageError):
        pub.encrypt([1.0], pool=pool)


def test_owner_crt_obfuscators_are_nth_residues() -> None:
    pub, priv = keys()
    # An n-th residue x satisfies x^(lambda) = 1 mod n^2 for lambda = lcm(p-1, q-1).
    import gmpy2

    lam = gmpy2.lcm(priv.p - 1, priv.q - 1)
    for x in priv.raw_obfuscators(5) + pub.raw_obfuscators(5, obfuscator="djn"):
        assert gmpy2.powmod(x, lam, pub.nsquare) == 1


@SETTINGS
@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(max_dims=2, max_side=30), elements=st.floats(-1000, 1000)
    ),
    st.integers(1, 5),
)
def test_packed_round_trip_and_sums(x: np.ndarray, k: int) -> None:
    pub, priv = keys()
    packed = pub.encrypt_packed(x)
    assert packed.ciphertext_count == -(-x.size // packed.layout.slots(pub))
    np.testing.assert_allclose(priv.decrypt(packed), x, atol=2.0**-16)
    total = packed
    for _ in range(k - 1):
        total = total + packed
    np.testing.assert_allclose(priv.decrypt_packed(total), k * x, atol=k * 2.0**-16)
    np.testing.assert_allclose(priv.decrypt(packed * k), k * x, atol=k * 2.0**-16)
    np.testing.assert_allclose(priv.decrypt(packed + x), 2 * x, atol=2 * 2.0**-16)
    again = PackedEncryptedArray.from_bytes(total.to_bytes(), pub)
    np.testing.assert_allclose(priv.decrypt(again), k * x, atol=k * 2.0**-16)


def test_packed_layout_at_2048_bits_has_42_slots() -> None:
    from crypto.paillier import PackingLayout

    class _Bits:
        bits = 2048

    assert PackingLayout().slots(_Bits()) == 42  # type: ignore[arg-type]
    assert PackingLayout().headroom_bits == 16


def test_packed_overflow_and_negative_multipliers_raise() -> None:
    pub, priv = keys()
    packed = pub.encrypt_packed(np.array([1.0, -1.0]))
    with pytest.raises(CryptoUsageError):
        packed * (2**16 + 1)
    with pytest.raises(CryptoUsageError):
        packed * -1
    with pytest.raises(CryptoUsageError):
        packed * 1.5
    with pytest.raises(CryptoUsageError):
        pub.encrypt_packed(np.array([2.0**15]))  # needs 32 signed bits at precision 16
    np.testing.assert_allclose(priv.decrypt(packed * 2**16), [2.0**16, -(2.0**16)])


def test_serialisation_round_trip() -> None:
    pub, priv = keys()
    x = np.arange(6.0).reshape(2, 3) / 3
    enc = pub.encrypt(x) * 2.5
    wire = EncryptedArray.from_bytes(enc.to_bytes(), pub)
    assert not wire.declared and wire.bound == pub.max_int  # the wire carries no scale or bound
    again = wire.assume(scale=enc.scale, bound=enc.bound)
    assert again.shape == enc.shape and again.scale == enc.scale and again.bound == enc.bound
    np.testing.assert_array_equal(priv.decrypt(again), priv.decrypt(enc))
    assert len(enc.to_bytes()) > 6 * pub.ciphertext_bytes


def test_wire_bytes_carry_no_plaintext_statistic() -> None:
    """Version 2: the bytes are header, shape and ciphertexts only, whatever the values."""
    pub, priv = keys()
    small, large = pub.encrypt(np.array([0.001, 0.0])), pub.encrypt(np.array([1e6, -3.0]))
    assert small.bound != large.bound  # tracked locally from the data ...
    header = 4 + 2 + 32 + 1 + 8  # magic, version/kind, fingerprint, ndim, one dim
    for enc in (small, large):
        data = enc.to_bytes()
        assert data[4] == 2 and len(data) == header + 2 * pub.ciphertext_bytes  # ... never sent
        assert data[header:] == b"".join(
            int(c).to_bytes(pub.ciphertext_bytes, "big") for c in enc.raw_ciphertexts()
        )
    # A public bound replaces the data's max |v|; values above it are refused.
    assert pub.encrypt(np.array([0.5]), bound=1 << 40).bound == 1 << 40
    with pytest.raises(CryptoUsageError, match="declared bound"):
        pub.encrypt(np.array([2.0]), bound=1 << 32)
    # An undeclared array refuses arithmetic and decryption until the receiver declares.
    wire = EncryptedArray.from_bytes(small.to_bytes(), pub)
    for op in (lambda: wire * 2, lambda: wire + 1.0, lambda: priv.decrypt(wire)):
        with pytest.raises(CryptoUsageError, match="undeclared"):
            op()
    declared = EncryptedArray.from_bytes(small.to_bytes(), pub, scale=32, bound=1 << 40)
    np.testing.assert_allclose(priv.decrypt(declared), [0.001, 0.0], atol=1e-9)
    assert PaillierPublicKey.from_bytes(pub.to_bytes()) == pub
    assert PaillierPrivateKey.from_bytes(priv.to_bytes()) == priv
    assert len(pub.fingerprint) == 64


def test_generate_keypair_sizes() -> None:
    with pytest.raises(CryptoUsageError):
        generate_keypair(1024)
    with pytest.raises(CryptoUsageError):
        generate_keypair(2000)
    with pytest.warns(UserWarning, match="INSECURE"):
        pub, priv = generate_keypair(256, insecure_allow_small_keys=True)
    assert pub.bits == 256 and priv.p * priv.q == pub.n


@pytest.mark.slow
def test_one_production_size_key() -> None:
    pub, priv = generate_keypair(2048)
    assert pub.bits == 2048
    x = np.array([0.5, -1.5, 1e9])
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(x, obfuscator="djn")), x)
    packed = pub.encrypt_packed(np.linspace(-5, 5, 84))
    assert packed.ciphertext_count == 2
    np.testing.assert_allclose(priv.decrypt(packed), np.linspace(-5, 5, 84), atol=2.0**-16)


def test_broadcasting_with_plaintext_and_ciphertext_operands() -> None:
    pub, priv = keys()
    col = np.array([[1.0], [-2.0], [3.5]])
    row = np.array([[0.5, -1.0, 2.0, 0.0]])
    enc_col = pub.encrypt(col)
    np.testing.assert_array_equal(priv.decrypt(enc_col + row), col + row)
    np.testing.assert_array_equal(priv.decrypt(row - enc_col), row - col)
    np.testing.assert_array_equal(priv.decrypt(enc_col + pub.encrypt(row)), col + row)
    np.testing.assert_array_equal(
        priv.decrypt(enc_col * np.array([1, -2, 3, 0])), col * [1, -2, 3, 0]
    )
    np.testing.assert_array_equal(priv.decrypt(pub.encrypt(2.0) + row), 2.0 + row)


def test_keys_are_immutable_under_copy() -> None:
    import copy

    pub, priv = keys()
    enc = pub.encrypt([1.0, -2.0])
    clone = copy.deepcopy(enc)
    assert clone.public_key is pub and copy.copy(priv) is priv
    np.testing.assert_array_equal(priv.decrypt(clone), [1.0, -2.0])
