"""``crypto.timing``: the public Paillier and CKKS calls add their wall time, outermost call only."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from crypto import timing
from crypto._timing import timed
from crypto.paillier import generate_keypair
from crypto.random import SeededRandom


@pytest.fixture(scope="module")
def keys() -> tuple[object, object]:
    with pytest.warns(UserWarning):
        return generate_keypair(512, rng=SeededRandom(1), insecure_allow_small_keys=True)


@timed
def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@timed
def _outer(seconds: float) -> None:
    _sleep(seconds)
    _sleep(seconds)


def test_outermost_call_only_counts_once() -> None:
    with timing.measure() as spent:
        start = time.perf_counter()
        _outer(0.02)
        wall = time.perf_counter() - start
    # Two nested 20 ms sleeps inside one outer call: counted once (twice would exceed the wall).
    assert 0.04 <= spent.seconds <= wall
    start = time.perf_counter()
    _sleep(0.01)
    assert 0.01 <= timing.thread_elapsed_since(start) <= time.perf_counter() - start


def test_window_clips_calls_that_started_before_it() -> None:
    _sleep(0.03)
    middle = time.perf_counter() - 0.01  # a window that starts inside the last call
    assert 0.009 < timing.thread_elapsed_since(middle) <= 0.01
    assert timing.thread_elapsed_since(time.perf_counter()) == 0.0


def test_other_threads_count_in_the_process_total_not_in_this_thread() -> None:
    before_process, before_thread = timing.elapsed(), timing.thread_elapsed()
    worker = threading.Thread(target=_sleep, args=(0.02,))
    worker.start()
    worker.join()
    assert timing.elapsed() - before_process >= 0.02
    assert timing.thread_elapsed() == before_thread


def test_paillier_entry_points_are_timed(keys: tuple[object, object]) -> None:
    pub, priv = keys
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    with timing.measure() as spent:
        start = time.perf_counter()
        enc = pub.encrypt(x, rng=SeededRandom(2))  # type: ignore[attr-defined]
        product = np.ones((2, 3)) @ (enc * 2 + 1)
        out = priv.decrypt(product)  # type: ignore[attr-defined]
        packed = priv.decrypt(pub.encrypt_packed(x, rng=SeededRandom(3)))  # type: ignore[attr-defined]
        wall = time.perf_counter() - start
    np.testing.assert_allclose(out, np.ones((2, 3)) @ (x * 2 + 1), atol=1e-6)
    np.testing.assert_allclose(packed, x, atol=1e-4)
    assert 0.0 < spent.seconds <= wall


def test_ckks_entry_points_are_timed() -> None:
    from crypto.ckks import CKKSBatch, CKKSContext

    context = CKKSContext.generate()
    x = np.arange(8.0).reshape(4, 2)
    with timing.measure() as spent:
        start = time.perf_counter()
        y = CKKSBatch.encrypt(context, x).matmul_plain(np.ones((2, 1)), rng=SeededRandom(0))
        out = y.decrypt()
        wall = time.perf_counter() - start
    np.testing.assert_allclose(out, x @ np.ones((2, 1)), atol=1e-3)
    assert 0.0 < spent.seconds <= wall


def test_failing_calls_are_counted_and_reset_the_nesting() -> None:
    @timed
    def fails() -> None:
        time.sleep(0.005)
        raise ValueError("boom")

    with timing.measure() as spent:
        with pytest.raises(ValueError):
            fails()
        _sleep(0.005)  # counted: the failed call left the depth at 0
    assert spent.seconds >= 0.01
