"""Interoperability with python-paillier (phe), both directions, keys converted both ways."""

from __future__ import annotations

import functools

import numpy as np
import phe
import pytest

from crypto.errors import CryptoUsageError
from crypto.paillier import EncryptedArray, PaillierPrivateKey, PaillierPublicKey


@functools.cache
def phe_keys() -> tuple[phe.PaillierPublicKey, phe.PaillierPrivateKey]:
    pub, priv = phe.generate_paillier_keypair(n_length=1024)
    return pub, priv


def test_keys_convert_both_ways() -> None:
    phe_pub, phe_priv = phe_keys()
    pub = PaillierPublicKey.from_phe(phe_pub)
    priv = PaillierPrivateKey.from_phe(phe_priv)
    assert int(pub.n) == phe_pub.n and priv.public_key == pub
    assert pub.to_phe() == phe_pub
    back = priv.to_phe()
    assert {back.p, back.q} == {phe_priv.p, phe_priv.q}


def test_phe_ciphertexts_decrypt_with_our_private_key() -> None:
    phe_pub, phe_priv = phe_keys()
    pub = PaillierPublicKey.from_phe(phe_pub)
    priv = PaillierPrivateKey.from_phe(phe_priv)
    values = [3.141592653589793, -2.5, 0.0, 17, -123456.75]
    numbers = [phe_pub.encrypt(v) for v in values]
    enc = EncryptedArray.from_phe(pub, numbers, max_abs_value=2e5)
    np.testing.assert_allclose(priv.decrypt(enc), values, rtol=1e-12, atol=1e-9)
    # Homomorphic work on imported ciphertexts keeps working.
    np.testing.assert_allclose(
        priv.decrypt(enc * 2 + 1.0), np.array(values) * 2 + 1, rtol=1e-12, atol=1e-9
    )
    grid = np.array(numbers, dtype=object).reshape(5, 1)
    assert EncryptedArray.from_phe(pub, grid).shape == (5, 1)


def test_our_ciphertexts_decrypt_with_phe_private_key() -> None:
    phe_pub, phe_priv = phe_keys()
    pub = PaillierPublicKey.from_phe(phe_pub)
    x = np.array([[1.5, -2.25], [1e6, -3e-5]])
    enc = pub.encrypt(x)
    numbers = enc.to_phe()
    assert numbers.shape == (2, 2)
    got = np.array([[phe_priv.decrypt(v) for v in row] for row in numbers])
    np.testing.assert_allclose(got, x, atol=2.0**-30)
    # A scale that is not a multiple of 4 (phe's base 16) is raised before export.
    odd = pub.encrypt(x[0]) * np.array([3, 5])  # scale 32 + 0
    odd_scaled = (pub.encrypt(x[0]) * 0.5).to_phe()
    assert [phe_priv.decrypt(v) for v in odd.to_phe()] == pytest.approx([4.5, -11.25])
    assert [phe_priv.decrypt(v) for v in odd_scaled] == pytest.approx([0.75, -1.125])


def test_phe_numbers_from_another_key_are_refused() -> None:
    phe_pub, _ = phe_keys()
    other_pub, _ = phe.generate_paillier_keypair(n_length=512)
    pub = PaillierPublicKey.from_phe(phe_pub)
    with pytest.raises(CryptoUsageError):
        EncryptedArray.from_phe(pub, [other_pub.encrypt(1.0)])
    with pytest.raises(CryptoUsageError):
        EncryptedArray.from_phe(pub, [1.0])
