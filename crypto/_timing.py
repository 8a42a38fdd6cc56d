"""Wall time spent in the public crypto entry points: process-wide and per thread.

The public Paillier and CKKS operations (encrypt, decrypt, homomorphic arithmetic on whole
arrays, ciphertext matrix products, packing and unpacking, key generation) are wrapped with
:func:`timed`. A wrapped call adds its wall time ``perf_counter() after - before`` to

* the process-wide total (:func:`elapsed`), under a lock, and
* the calling thread's total (:func:`thread_elapsed`) and its recent call intervals, so a caller
  can ask how much of a wall-clock window this thread spent in crypto
  (:func:`thread_elapsed_since`, :func:`measure`).

Only the outermost call counts: a timed call made inside another timed call on the same thread
(``encrypt`` calling ``raw_obfuscators``) adds nothing, so nothing is counted twice. A call that
fans out to the worker process pool counts the parent's wait; the workers' own time is not added
again. Work in a helper thread (the obfuscator precomputation of hetero LR) counts in the process
total and in that thread, not in the thread that later uses its output.

Cost: one ``perf_counter`` pair, a thread-local lookup, a lock and a deque append per public call
(about a microsecond), never per array element.

>>> from crypto import timing
>>> with timing.measure() as spent:
...     pass
>>> spent.seconds
0.0
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

__all__ = ["timed", "elapsed", "thread_elapsed", "thread_elapsed_since", "measure", "Spent"]

P = ParamSpec("P")
R = TypeVar("R")

#: Call intervals remembered per thread for :func:`thread_elapsed_since` (older ones are dropped).
MAX_INTERVALS = 1 << 15

_lock = threading.Lock()
_total = 0.0


class _ThreadClock(threading.local):
    """One thread's nesting depth, total, and its latest ``(start, end)`` call intervals."""

    def __init__(self) -> None:
        self.depth = 0
        self.total = 0.0
        self.intervals: deque[tuple[float, float]] = deque(maxlen=MAX_INTERVALS)


_clock = _ThreadClock()


def timed(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a public crypto entry point so its wall time is counted (module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        clock = _clock
        if clock.depth:
            return fn(*args, **kwargs)
        clock.depth = 1
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            end = time.perf_counter()
            clock.depth = 0
            _add(clock, start, end)

    return wrapper


def _add(clock: _ThreadClock, start: float, end: float) -> None:
    global _total
    clock.total += end - start
    clock.intervals.append((start, end))
    with _lock:
        _total += end - start


def elapsed() -> float:
    """Seconds spent in timed crypto calls by every thread of this process so far."""
    with _lock:
        return _total


def thread_elapsed() -> float:
    """Seconds spent in timed crypto calls by the calling thread so far."""
    return float(_clock.total)


def thread_elapsed_since(start: float) -> float:
    """Seconds the calling thread spent in timed crypto calls since ``start`` (a
    :func:`time.perf_counter` value): the calls' intervals clipped to ``[start, now]``.

    Exact while the thread made at most :data:`MAX_INTERVALS` calls since ``start``; beyond that
    the oldest calls are forgotten and the result is a lower bound.
    """
    spent = 0.0
    for begin, end in reversed(_clock.intervals):
        if end <= start:
            break
        spent += end - max(begin, start)
    return spent


@dataclass
class Spent:
    """What :func:`measure` found: ``seconds`` of the calling thread in crypto in the block."""

    seconds: float = 0.0


@contextmanager
def measure() -> Iterator[Spent]:
    """``with measure() as spent: ...`` -- ``spent.seconds`` is the calling thread's crypto time
    inside the block (set when the block exits)."""
    spent = Spent()
    before = thread_elapsed()
    try:
        yield spent
    finally:
        spent.seconds = thread_elapsed() - before
