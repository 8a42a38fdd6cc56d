"""Run the scalar multiplications on every core, batch by batch, in order, with bounded memory.

A :class:`BatchPool` maps a function over an iterator of argument tuples and yields the results
in input order while keeping at most ``window`` batches in flight, so a stream of received chunks
is processed as it arrives and memory stays bounded by ``window`` batches. With ``workers=0`` (or
for small jobs) everything runs inline in the calling thread, deterministically.

Worker processes are started with the ``spawn`` method: forking a process that runs gRPC or
transport threads is unsafe. Only our own secret scalar and blinded points cross the (local)
process boundary.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["BatchPool", "default_workers"]

R = TypeVar("R")


def default_workers() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class BatchPool:
    """A lazily started process pool (or inline execution when ``workers == 0``)."""

    def __init__(self, *, workers: int | None = None) -> None:
        self._workers = default_workers() if workers is None else int(workers)
        if self._workers < 0:
            raise ValueError("workers must be >= 0")
        self._executor: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def _get_executor(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    def imap(
        self,
        fn: Callable[..., R],
        args: Iterable[tuple[Any, ...]],
        *,
        window: int | None = None,
        inline: bool = False,
    ) -> Iterator[R]:
        """Yield ``fn(*a)`` for each ``a`` in ``args``, in order, ``window`` batches in flight.

        ``args`` is consumed lazily (it may block, e.g. on a channel receive) as slots free up.
        """
        if inline or self._workers == 0:
            for a in args:
                yield fn(*a)
            return
        executor = self._get_executor()
        limit = window if window is not None else 2 * self._workers
        pending: collections.deque[Future[R]] = collections.deque()
        try:
            for a in args:
                pending.append(executor.submit(fn, *a))
                while len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()

    def close(self) -> None:
        """Stop the worker processes. Idempotent."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> BatchPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
