"""Known-answer vectors for crypto.paillier (tiny fixed primes, fixed randomness).

The expected ciphertexts in vectors/paillier_kat.json were computed with plain Python integers
(see its "description"), independently of the code under test, and cross-checked against phe.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gmpy2
import numpy as np
import phe
import pytest

from crypto.paillier import EncryptedArray, FixedPointEncoding, PaillierPrivateKey
from crypto.random import SeededRandom

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "paillier_kat.json").read_text()
)


def _key() -> PaillierPrivateKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PaillierPrivateKey.from_primes(
            int(VECTORS["p"]), int(VECTORS["q"]), insecure_allow_small_keys=True
        )


def test_key_from_primes_matches_vector() -> None:
    priv = _key()
    assert int(priv.public_key.n) == int(VECTORS["n"])
    assert priv.public_key.max_int == int(VECTORS["n"]) // 3 - 1


@pytest.mark.parametrize("vec", VECTORS["raw"], ids=lambda v: f"m={v['m'][:8]}")
def test_raw_encrypt_and_decrypt_known_answers(vec: dict[str, str]) -> None:
    priv = _key()
    m, r, c = int(vec["m"]), int(vec["r"]), int(vec["c"])
    assert priv.public_key.raw_encrypt(m, r=r) == c
    assert priv.raw_decrypt(c) == m
    # python-paillier computes the same ciphertext from the same (m, r).
    assert priv.public_key.to_phe().raw_encrypt(m, r_value=r) == c


def test_seeded_encryption_known_answers() -> None:
    priv = _key()
    seeded = VECTORS["seeded"]
    enc = priv.public_key.encrypt(
        np.array(seeded["values"]),
        encoding=FixedPointEncoding(seeded["precision_bits"]),
        rng=SeededRandom(seeded["seed"]),
    )
    assert [int(c) for c in enc.raw_ciphertexts()] == [int(c) for c in seeded["ciphertexts"]]
    np.testing.assert_array_equal(priv.decrypt(enc), np.array(seeded["values"]))


def test_seeded_vector_bytes_round_trip() -> None:
    priv = _key()
    seeded = VECTORS["seeded"]
    cts = np.empty(len(seeded["ciphertexts"]), dtype=object)
    cts[:] = [gmpy2.mpz(int(c)) for c in seeded["ciphertexts"]]
    bound = max(abs(round(v * 2 ** seeded["precision_bits"])) for v in seeded["values"])
    enc = EncryptedArray(priv.public_key, cts, scale=seeded["precision_bits"], bound=bound)
    again = EncryptedArray.from_bytes(
        enc.to_bytes(), priv.public_key, scale=seeded["precision_bits"], bound=bound
    )
    assert again.raw_ciphertexts() == enc.raw_ciphertexts()
    np.testing.assert_array_equal(priv.decrypt(again), np.array(seeded["values"]))


def test_phe_private_key_decrypts_vectors() -> None:
    priv = _key()
    phe_priv = priv.to_phe()
    for vec in VECTORS["raw"]:
        assert phe_priv.raw_decrypt(int(vec["c"])) == int(vec["m"])
    assert isinstance(phe_priv, phe.PaillierPrivateKey)
