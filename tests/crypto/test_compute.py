"""The local compute backend: ordered, windowed, inline or on processes; clear errors.

The Ray backend is tested on a real two-node cluster in tests/integration/test_ray_compute.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from crypto import compute
from crypto.compute import ComputeError, ComputeStats, LocalBackend, RayBackend, make_backend


def _square_after(x: int, delay_ms: int) -> tuple[int, int]:
    """``x*x`` after ``delay_ms`` ms, with the pid that computed it (module-level: picklable)."""
    threading.Event().wait(delay_ms / 1000)
    return x * x, os.getpid()


def _die(code: int) -> None:
    os._exit(code)


def test_inline_backend_runs_in_the_calling_process_in_order() -> None:
    with LocalBackend(workers=0) as backend:
        out = list(backend.imap(_square_after, [(i, 0) for i in range(10)]))
    assert [v for v, _ in out] == [i * i for i in range(10)]
    assert {pid for _, pid in out} == {os.getpid()}


def test_process_backend_keeps_input_order_whatever_finishes_first() -> None:
    # Early items take longest: they finish last, yet come out first.
    args = [(i, 40 - 4 * i) for i in range(10)]
    with LocalBackend(workers=2) as backend:
        out = list(backend.imap(_square_after, args, window=4))
        assert backend.stats() == ComputeStats("local", 1, 10, (10,))
    assert [v for v, _ in out] == [i * i for i in range(10)]
    assert os.getpid() not in {pid for _, pid in out}


def test_window_bounds_the_calls_in_flight() -> None:
    pulled = 0

    def args() -> Iterator[tuple[int, int]]:
        nonlocal pulled
        for i in range(12):
            pulled += 1
            yield i, 0

    with LocalBackend(workers=1) as backend:
        stream = backend.imap(_square_after, args(), window=3)
        assert next(stream)[0] == 0
        assert pulled == 3  # the first result was wanted once 3 calls were in flight
        assert [v for v, _ in stream] == [i * i for i in range(1, 12)]


def test_a_dead_local_worker_is_a_compute_error_naming_the_batch() -> None:
    with LocalBackend(workers=1) as backend:
        with pytest.raises(ComputeError, match="local worker process died computing batch 0"):
            backend.map(_die, [(3,)])
        # The broken pool is replaced on next use.
        assert backend.map(_square_after, [(4, 0)])[0][0] == 16


def test_make_backend_and_configure() -> None:
    assert isinstance(make_backend("local", workers=0), LocalBackend)
    assert isinstance(make_backend("ray", address="127.0.0.1:1"), RayBackend)
    with pytest.raises(ValueError, match="unknown compute backend 'spark'"):
        make_backend("spark")
    with pytest.raises(ValueError, match="only for the ray backend"):
        make_backend("local", address="h:1")
    with pytest.raises(ValueError, match="workers"):
        LocalBackend(workers=-1)
    with pytest.raises(ValueError, match="max_retries"):
        RayBackend(max_retries=-1)
    backend = LocalBackend(workers=0)
    previous = compute.configure(backend)
    try:
        assert compute.current() is backend
    finally:
        compute.configure(previous)
    assert compute.current() is previous
