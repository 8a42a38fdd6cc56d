"""Negative cases: wrong key, overflow, truncated or tampered bytes, shape mismatch."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from crypto.errors import CryptoUsageError, InvalidCiphertext, InvalidKey
from crypto.paillier import (
    EncryptedArray,
    ObfuscatorPool,
    PackedEncryptedArray,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)
from crypto.random import SeededRandom


@functools.cache
def two_keys() -> tuple[
    tuple[PaillierPublicKey, PaillierPrivateKey], tuple[PaillierPublicKey, PaillierPrivateKey]
]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = generate_keypair(512, rng=SeededRandom(11), insecure_allow_small_keys=True)
        b = generate_keypair(512, rng=SeededRandom(12), insecure_allow_small_keys=True)
    return a, b


def test_mixing_keys_raises() -> None:
    (pub_a, priv_a), (pub_b, priv_b) = two_keys()
    ea, eb = pub_a.encrypt([1.0, 2.0]), pub_b.encrypt([1.0, 2.0])
    with pytest.raises(CryptoUsageError):
        ea + eb
    with pytest.raises(CryptoUsageError):
        ea - eb
    with pytest.raises(CryptoUsageError):
        priv_b.decrypt(ea)
    pool = ObfuscatorPool(pub_b)
    pool.fill(2)
    with pytest.raises(CryptoUsageError):
        pub_a.encrypt([1.0], pool=pool)
    with pytest.raises(CryptoUsageError):
        ea.rerandomize(pool=pool)
    with pytest.raises(CryptoUsageError):
        ObfuscatorPool(pub_a, private_key=priv_b)
    pa, pb = pub_a.encrypt_packed([1.0]), pub_b.encrypt_packed([1.0])
    with pytest.raises(CryptoUsageError):
        pa + pb
    with pytest.raises(CryptoUsageError):
        priv_b.decrypt(pa)


def test_other_key_bytes_raise_invalid_ciphertext() -> None:
    (pub_a, _), (pub_b, _) = two_keys()
    with pytest.raises(InvalidCiphertext):
        EncryptedArray.from_bytes(pub_a.encrypt([1.0]).to_bytes(), pub_b)
    with pytest.raises(InvalidCiphertext):
        PackedEncryptedArray.from_bytes(pub_a.encrypt_packed([1.0]).to_bytes(), pub_b)


@pytest.mark.parametrize("cut", [0, 3, 10, 40, -1, -100])
def test_truncated_bytes_raise(cut: int) -> None:
    (pub, _), _ = two_keys()
    data = pub.encrypt([1.0, -2.0]).to_bytes()
    with pytest.raises(InvalidCiphertext):
        EncryptedArray.from_bytes(data[:cut], pub)
    packed = pub.encrypt_packed([1.0, -2.0]).to_bytes()
    with pytest.raises(InvalidCiphertext):
        PackedEncryptedArray.from_bytes(packed[:cut], pub)


def test_tampered_bytes_raise() -> None:
    (pub, _), _ = two_keys()
    data = bytearray(pub.encrypt([1.0, -2.0]).to_bytes())
    for pos in (0, 4, 5, 6, 20):
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        with pytest.raises(InvalidCiphertext):
            EncryptedArray.from_bytes(bytes(bad), pub)
    # A ciphertext >= n^2 (all 0xFF) or a multiple of n is refused.
    width = pub.ciphertext_bytes
    bad = bytearray(data)
    bad[-width:] = b"\xff" * width
    with pytest.raises(InvalidCiphertext):
        EncryptedArray.from_bytes(bytes(bad), pub)
    bad[-width:] = int(pub.n).to_bytes(width, "big")
    with pytest.raises(InvalidCiphertext):
        EncryptedArray.from_bytes(bytes(bad), pub)
    with pytest.raises(InvalidCiphertext):
        EncryptedArray.from_bytes(bytes(data) + b"\x00", pub)


def test_malformed_keys_raise_invalid_key() -> None:
    (pub, priv), _ = two_keys()
    for blob in (b"", pub.to_bytes()[:-1], b"XXXX" + pub.to_bytes()[4:], pub.to_bytes() + b"\x00"):
        with pytest.raises(InvalidKey):
            PaillierPublicKey.from_bytes(blob)
    for blob in (b"", priv.to_bytes()[:-1], priv.to_bytes() + b"\x01"):
        with pytest.raises(InvalidKey):
            PaillierPrivateKey.from_bytes(blob)
    bad_q = bytearray(priv.to_bytes())
    bad_q[-1] ^= 0x02  # q no longer prime
    with pytest.raises(InvalidKey):
        PaillierPrivateKey.from_bytes(bytes(bad_q))


def test_shape_mismatch_raises() -> None:
    (pub, _), _ = two_keys()
    enc = pub.encrypt(np.zeros((2, 3)))
    with pytest.raises(CryptoUsageError):
        enc + np.zeros((4,))
    with pytest.raises(CryptoUsageError):
        enc + pub.encrypt(np.zeros((3, 2)))
    with pytest.raises(CryptoUsageError):
        enc * np.ones((5,))
    with pytest.raises(CryptoUsageError):
        np.ones((4, 4)) @ enc
    with pytest.raises(CryptoUsageError):
        enc @ np.ones((2, 2))
    with pytest.raises(CryptoUsageError):
        enc.reshape(7)
    with pytest.raises(CryptoUsageError):
        pub.encrypt_packed(np.zeros(3)) + np.zeros(4)


def test_unsupported_operations_raise() -> None:
    (pub, _), _ = two_keys()
    enc = pub.encrypt([1.0, 2.0])
    with pytest.raises(CryptoUsageError):
        enc * enc
    with pytest.raises(CryptoUsageError):
        enc @ enc
    with pytest.raises(CryptoUsageError):
        pub.encrypt([np.nan])
    with pytest.raises(CryptoUsageError):
        pub.encrypt(["a"])
    with pytest.raises(CryptoUsageError):
        pub.encrypt([1.0], obfuscator="nope")
    with pytest.raises(CryptoUsageError):
        enc + pub.encrypt_packed([1.0, 2.0])
    with pytest.raises(CryptoUsageError):
        pub.encrypt([1.0], processes=0)


def test_overflow_of_scale_raises() -> None:
    (pub, _), _ = two_keys()
    enc = pub.encrypt([1.0])
    for _ in range(20):  # 512-bit key: scale 32 -> 64 -> ... until the bound exceeds max_int
        try:
            enc = enc * 1.5
        except CryptoUsageError:
            break
    else:
        pytest.fail("scale growth never raised")
    assert enc.bound <= pub.max_int


def test_gap_plaintext_is_detected_on_decryption() -> None:
    (pub, priv), _ = two_keys()
    # Forge E(n // 2): in the gap between positive and negative encodings.
    c = pub.raw_encrypt(int(pub.n) // 2, r=12345)
    forged = EncryptedArray.from_bytes(
        pub.encrypt([0.0]).to_bytes()[: -pub.ciphertext_bytes]
        + c.to_bytes(pub.ciphertext_bytes, "big"),
        pub,
        scale=32,
    )
    with pytest.raises(InvalidCiphertext):
        priv.decrypt(forged)
