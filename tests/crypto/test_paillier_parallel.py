"""The process-parallel paths give exactly the serial results."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest

from crypto.paillier import (
    ObfuscatorPool,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
    shutdown_workers,
)
from crypto.paillier._multiexp import choose_window, multiexp_rows
from crypto.random import SeededRandom


@functools.cache
def keys() -> tuple[PaillierPublicKey, PaillierPrivateKey]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_keypair(512, rng=SeededRandom(77), insecure_allow_small_keys=True)


def test_multiexp_bucket_method_matches_naive() -> None:
    import gmpy2

    pub, _ = keys()
    rng = np.random.default_rng(1)
    bases = [gmpy2.mpz(c) for c in pub.encrypt(rng.normal(size=200)).raw_ciphertexts()]
    scalars = rng.integers(-(2**40), 2**40, size=(3, 200))
    fast = multiexp_rows(bases, scalars, pub.nsquare)
    slow = multiexp_rows(bases, scalars.astype(object), pub.nsquare)
    assert fast == slow
    assert 1 <= choose_window(30000, 35) <= 16


@pytest.mark.slow
def test_process_parallel_paths_equal_serial() -> None:
    pub, priv = keys()
    x = np.random.default_rng(2).normal(size=(400, 3))
    v = np.random.default_rng(3).normal(size=400)
    serial = pub.encrypt(v, rng=SeededRandom(5))
    parallel = pub.encrypt(v, rng=SeededRandom(5), processes=2)
    assert parallel.raw_ciphertexts() == serial.raw_ciphertexts()
    owner_serial = priv.encrypt(v[:50], rng=SeededRandom(6))
    owner_parallel = priv.encrypt(v[:50], rng=SeededRandom(6), processes=2)
    assert owner_parallel.raw_ciphertexts() == owner_serial.raw_ciphertexts()
    assert (x.T @ serial).raw_ciphertexts() == serial.rmatmul(x.T, processes=2).raw_ciphertexts()
    # One output: the bases are split over the workers instead of the outputs.
    one = x[:, :1].T
    assert (one @ serial).raw_ciphertexts() == serial.rmatmul(one, processes=2).raw_ciphertexts()
    np.testing.assert_array_equal(priv.decrypt(serial, processes=2), priv.decrypt(serial))
    djn = pub.encrypt(v[:40], obfuscator="djn", processes=2)
    np.testing.assert_array_equal(priv.decrypt(djn), priv.decrypt(serial[:40]))
    pool = ObfuscatorPool(pub, rng=SeededRandom(9))
    pool.fill(30, processes=2)
    assert len(pool) == 30
    shutdown_workers()
