"""Process-level parallelism for large Paillier batches.

The heavy loops (obfuscators, CRT decryption, multi-exponentiation) are pure functions of lists of
integers. :func:`map_chunks` splits the list into one chunk per worker process, ships integers as
fixed-width big-endian bytes (never pickled objects of ours), and concatenates the results in
order, so the output is identical to the serial call. The chunks run on the compute backend
(:mod:`crypto.compute`): the one installed by :func:`crypto.compute.configure` (e.g. the party's
Ray cluster), else a :class:`~crypto.compute.LocalBackend` whose workers are forked from
``multiprocessing``'s fork server (a single-threaded process started once, with this package
preloaded), which is safe in a multi-threaded parent (e.g. next to gRPC). The workers are kept
(idle) after a call and reused by the next call with the same ``processes``, until
:func:`shutdown_workers` or interpreter exit. As with any
``multiprocessing`` code, a script using it must guard its entry point with
``if __name__ == "__main__":``.

``processes=None`` (the default everywhere) or ``1`` means serial, in the calling process.
Threads are not used for the multiplication-bound loops: gmpy2 releases the GIL only inside
``gmpy2.context(allow_release_gil=True)`` and only for long operations; a 4096-bit ``a*b % m``
is too short to profit (measured 1.1x on two cores), while ``powmod`` profits.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from typing import Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto import compute
from crypto.compute import LocalBackend
from crypto.errors import CryptoUsageError

__all__ = ["map_chunks", "djn_parallel", "multiexp_parallel", "check_processes", "shutdown_workers"]

_MIN_PER_WORKER = 4


def check_processes(processes: int | None) -> int:
    """Validate ``processes`` and return the worker count (1 for serial)."""
    if processes is None:
        return 1
    if not isinstance(processes, int) or processes < 1:
        raise CryptoUsageError("processes must be a positive int or None")
    return processes


def _to_bytes(values: list[Any]) -> tuple[bytes, int]:
    width = (max((gmpy2.mpz(v).bit_length() for v in values), default=1) + 7) // 8 or 1
    return b"".join(gmpy2.mpz(v).to_bytes(width, "big") for v in values), width


def _from_bytes(data: bytes, width: int) -> list[Any]:
    from_bytes = gmpy2.mpz.from_bytes
    return [from_bytes(data[i : i + width], "big") for i in range(0, len(data), width)]


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _run_chunk(
    fn: Callable[..., list[Any]], data: bytes, width: int, extras: tuple[bytes, ...]
) -> tuple[bytes, int]:
    items = _from_bytes(data, width)
    args = [gmpy2.mpz.from_bytes(e, "big") for e in extras]
    return _to_bytes(fn(items, *args))


class _WorkerCache:
    """Local backends kept alive between calls (one per worker count), shut down at exit.

    Starting workers costs about 0.5 s (they import numpy and gmpy2); reusing them makes the
    parallel path pay that once per process, not once per call. Forked children start afresh.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pools: dict[int, LocalBackend] = {}

    def get(self, processes: int) -> LocalBackend:
        with self._lock:
            if os.getpid() != self._pid:
                self._pools = {}
                self._pid = os.getpid()
            pool = self._pools.get(processes)
            if pool is None:
                pool = LocalBackend(workers=processes, start_method="forkserver")
                self._pools[processes] = pool
            return pool

    def shutdown(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


_WORKERS = _WorkerCache()
atexit.register(_WORKERS.shutdown)


def shutdown_workers() -> None:
    """Stop the worker processes kept for ``processes=N`` calls (they restart on next use)."""
    _WORKERS.shutdown()


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _submit_all(processes: int, calls: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``fn(*args)`` for each ``(fn, *args)``, results in order.

    On the backend installed by :func:`crypto.compute.configure` (e.g. the party's Ray cluster)
    if there is one, else on this machine's cached pool of ``processes`` workers.
    """
    backend = compute.current() or _WORKERS.get(processes)
    return backend.map(_call, calls)


def map_chunks(
    fn: Callable[..., list[Any]], items: list[Any], processes: int | None, *extras: Any
) -> list[Any]:
    """``fn(items, *extras)``, computed over ``processes`` workers when that is worth it.

    ``fn`` must be a module-level function mapping a list of integers to a list of integers of
    the same length, element by element; ``extras`` are integers.
    """
    workers = check_processes(processes)
    if workers == 1 or len(items) < workers * _MIN_PER_WORKER:
        return fn(items, *extras)
    extra_bytes = tuple(
        gmpy2.mpz(e).to_bytes((gmpy2.mpz(e).bit_length() + 7) // 8 or 1, "big") for e in extras
    )
    chunks = [_to_bytes(chunk) for chunk in _split(items, workers)]
    out: list[Any] = []
    calls = [(_run_chunk, fn, data, width, extra_bytes) for data, width in chunks]
    for data, width in _submit_all(workers, calls):
        out.extend(_from_bytes(data, width))
    return out


_DJN_TABLES: dict[tuple[int, int], Any] = {}  # per worker process: (n, h_s) -> DjnState


def _djn_chunk(alphas: list[Any], n: Any, hs: Any) -> list[Any]:
    from crypto.paillier._obfuscators import DjnState

    key = (int(n), int(hs))
    state = _DJN_TABLES.get(key)
    if state is None:
        if len(_DJN_TABLES) >= 4:
            _DJN_TABLES.clear()
        state = _DJN_TABLES[key] = DjnState.from_hs(n, hs)
    return state.obfuscators([int(a) for a in alphas])


def djn_parallel(alphas: list[int], state: Any, processes: int) -> list[Any]:
    """DJN obfuscators ``h_s^alpha`` over worker processes (each rebuilds the fixed-base table)."""
    return map_chunks(_djn_chunk, list(alphas), processes, state.n, state.hs)


def _multiexp_chunk(
    bases_data: bytes, width: int, scalars: bytes, shape: tuple[int, int], modulus: bytes
) -> tuple[bytes, int]:
    from crypto.paillier._multiexp import multiexp_rows

    bases = _from_bytes(bases_data, width)
    mat = np.frombuffer(scalars, dtype="<i8").reshape(shape)
    return _to_bytes(multiexp_rows(bases, mat, gmpy2.mpz.from_bytes(modulus, "big")))


def multiexp_parallel(
    bases: list[Any], scalars: npt.NDArray[np.int64], modulus: Any, processes: int
) -> list[Any]:
    """``[prod_k bases[k]^scalars[i, k] mod modulus for i]``, split over the workers.

    With at least as many outputs as workers, each worker computes whole outputs (rows of
    ``scalars``) over all bases: the bucket method's fixed cost per output is then paid once,
    not once per worker. Otherwise the ``k`` axis is split: each worker returns the partial
    products over its slice of bases and the parent multiplies them.
    """
    from crypto.paillier._multiexp import multiexp_rows

    k = len(bases)
    workers = check_processes(processes)
    if workers == 1 or k < workers * 64:
        return multiexp_rows(bases, scalars, modulus)
    mod_bytes = gmpy2.mpz(modulus).to_bytes((gmpy2.mpz(modulus).bit_length() + 7) // 8, "big")
    rows = scalars.shape[0]
    if rows >= workers:
        data, width = _to_bytes(list(bases))
        per = -(-rows // workers)
        row_calls = []
        for start in range(0, rows, per):
            part = np.ascontiguousarray(scalars[start : start + per], dtype="<i8")
            row_calls.append((_multiexp_chunk, data, width, part.tobytes(), part.shape, mod_bytes))
        out: list[Any] = []
        for chunk, chunk_width in _submit_all(workers, row_calls):
            out.extend(_from_bytes(chunk, chunk_width))
        return out
    size = -(-k // workers)
    results: list[Any] = [gmpy2.mpz(1)] * scalars.shape[0]
    calls = []
    for start in range(0, k, size):
        data, width = _to_bytes(bases[start : start + size])
        part = np.ascontiguousarray(scalars[:, start : start + size], dtype="<i8")
        calls.append((_multiexp_chunk, data, width, part.tobytes(), part.shape, mod_bytes))
    for data, width in _submit_all(workers, calls):
        partial = _from_bytes(data, width)
        results = [a * b % modulus for a, b in zip(results, partial, strict=True)]
    return results
