"""One compute backend for the heavy loops: local worker processes, or this party's Ray cluster.

A :class:`ComputeBackend` maps a picklable module-level function over an iterable of argument
tuples and yields the results **in input order**, with at most ``window`` calls in flight, so a
stream of received chunks is processed as it arrives and memory stays bounded. Both PSI (blinding,
re-keying) and Paillier batches (obfuscators, CRT decryption, multi-exponentiation) run through it;
the result of a call never depends on the backend, only on ``fn`` and its arguments.

* :class:`LocalBackend` runs the calls on a lazily started process pool of this machine (``spawn``
  or the ``forkserver``; never plain ``fork``, which is unsafe next to gRPC threads), or inline in
  the calling thread with ``workers=0``.
* :class:`RayBackend` runs them as Ray tasks on the party's **own** Ray cluster (``address`` of its
  head node). ``ray`` is imported only when this backend is first used. Each task reports the node
  and process that ran it, so :meth:`ComputeBackend.stats` tells how many nodes did work. A task
  whose worker dies is retried up to ``max_retries`` times by Ray; past that the call raises
  :class:`ComputeError` naming the lost batch.

What goes to the workers is what the function needs: for PSI, this party's secret scalar and its
(blinded) points; for Paillier, integers and, for CRT decryption and CRT obfuscators, the private
key's primes. With :class:`RayBackend` those cross the party's own network to its own Ray workers;
cross-party traffic never goes through Ray (DESIGN.md "Compute backends", docs/deploy.md).

:func:`configure` installs a process-wide backend (the ``--compute`` option of the CLI does), used
by callers that are not handed one explicitly (:func:`current`).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from crypto.errors import CryptoError

__all__ = [
    "BACKENDS",
    "ComputeBackend",
    "ComputeError",
    "ComputeStats",
    "LocalBackend",
    "RayBackend",
    "configure",
    "current",
    "default_workers",
    "make_backend",
]

R = TypeVar("R")

#: The backend names accepted by :func:`make_backend` (and the CLI's ``--compute``).
BACKENDS = ("local", "ray")


class ComputeError(CryptoError):
    """A batch could not be computed (a worker died and no retry was left, or no cluster)."""


def default_workers() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ComputeStats:
    """What a backend did: its name, how many distinct nodes ran tasks, how many tasks ran."""

    backend: str
    nodes: int
    tasks: int
    tasks_per_node: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The ``"compute"`` object of a result JSON."""
        out: dict[str, Any] = {"backend": self.backend, "nodes": self.nodes, "tasks": self.tasks}
        if self.tasks_per_node:
            out["tasks_per_node"] = list(self.tasks_per_node)
        return out


class ComputeBackend:
    """Ordered, windowed ``map`` of a module-level function over argument tuples.

    Subclasses implement :meth:`_submit` (start one call, return a handle) and :meth:`_result`
    (wait for a handle); the ordering, windowing and cancellation live here once.
    """

    name = "abstract"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks = 0

    @property
    def workers(self) -> int:
        """How many calls may usefully run at once (sets the default window)."""
        raise NotImplementedError

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...], index: int) -> Any:
        raise NotImplementedError

    def _result(self, handle: Any, index: int) -> Any:
        raise NotImplementedError

    def _cancel(self, handle: Any) -> None:
        """Best effort: drop a call whose result is no longer wanted."""

    def _count(self) -> None:
        with self._lock:
            self._tasks += 1

    def imap(
        self,
        fn: Callable[..., R],
        args: Iterable[tuple[Any, ...]],
        *,
        window: int | None = None,
        inline: bool = False,
    ) -> Iterator[R]:
        """Yield ``fn(*a)`` for each ``a`` in ``args``, in order, ``window`` calls in flight.

        ``args`` is consumed lazily (it may block, e.g. on a channel receive) as slots free up.
        ``inline=True`` (or a backend without workers) runs every call in the calling thread.
        """
        if inline or self.workers == 0:
            for a in args:
                yield fn(*a)
            return
        limit = max(1, window if window is not None else 2 * self.workers)
        pending: collections.deque[tuple[int, Any]] = collections.deque()
        try:
            for index, a in enumerate(args):
                pending.append((index, self._submit(fn, a, index)))
                while len(pending) >= limit:
                    i, handle = pending.popleft()
                    yield self._result(handle, i)
            while pending:
                i, handle = pending.popleft()
                yield self._result(handle, i)
        finally:
            for _, handle in pending:
                self._cancel(handle)

    def map(self, fn: Callable[..., R], args: Iterable[tuple[Any, ...]]) -> list[R]:
        """Every ``fn(*a)`` at once (no window), in order."""
        calls = list(args)
        return list(self.imap(fn, calls, window=len(calls) or 1))

    def stats(self) -> ComputeStats:
        """What this backend has run so far."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the workers (they restart on next use). Idempotent."""

    def __enter__(self) -> ComputeBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _context(method: str) -> Any:
    if method == "forkserver" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["crypto.paillier._parallel"])
        return ctx
    return multiprocessing.get_context("spawn")


class LocalBackend(ComputeBackend):
    """A lazily started process pool on this machine; ``workers=0`` runs everything inline.

    ``start_method`` is ``"spawn"`` (default) or ``"forkserver"`` (a single-threaded server that
    forks the workers with the Paillier helpers preloaded: faster to start, equally thread-safe).
    """

    name = "local"

    def __init__(self, *, workers: int | None = None, start_method: str = "spawn") -> None:
        super().__init__()
        count = default_workers() if workers is None else workers
        if not isinstance(count, int) or count < 0:
            raise ValueError("workers must be an int >= 0")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError("start_method must be 'spawn' or 'forkserver'")
        self._workers = count
        self._start_method = start_method
        self._executor: ProcessPoolExecutor | None = None
        self._pid = os.getpid()

    @property
    def workers(self) -> int:
        return self._workers

    def _get_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if os.getpid() != self._pid:  # a forked child starts afresh
                self._executor = None
                self._pid = os.getpid()
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self._workers, mp_context=_context(self._start_method)
                )
            return self._executor

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...], index: int) -> Any:
        return self._get_executor().submit(fn, *args)

    def _result(self, handle: Future[Any], index: int) -> Any:
        try:
            out = handle.result()
        except BrokenProcessPool:
            self._discard()
            raise ComputeError(f"a local worker process died computing batch {index}") from None
        self._count()
        return out

    def _cancel(self, handle: Future[Any]) -> None:
        handle.cancel()

    def _discard(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def stats(self) -> ComputeStats:
        with self._lock:
            tasks = self._tasks
        return ComputeStats(self.name, 1 if tasks else 0, tasks, (tasks,) if tasks else ())

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _ray_task(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, int, Any]:
    """Run ``fn(*args)`` in a Ray worker; report the node id and pid with the result."""
    import ray

    return ray.get_runtime_context().get_node_id(), os.getpid(), fn(*args)


def _probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a wrong ``HOST:PORT``: ``ray.init`` itself retries for minutes."""
    if "://" in address:
        return  # a Ray Client address (ray://...): let Ray handle it
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ComputeError(f"Ray address {address!r} is not HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ComputeError(
            f"cannot connect to the Ray cluster at {address}: {exc.strerror or exc}"
        ) from None


class RayBackend(ComputeBackend):
    """Ray tasks on this party's own Ray cluster (``address``: its head, e.g. ``10.0.0.5:6379``).

    ``address=None`` connects to the cluster Ray finds on its own (``RAY_ADDRESS`` or a local
    head); there is no silent start of a private local cluster. ``workers`` (default: the
    cluster's CPU count when first used) sets the default window. ``max_retries`` is how often Ray
    reruns a task whose worker process or node died; a batch still lost raises
    :class:`ComputeError`. The tasks run the same module-level functions as the local backend, so
    the workers must be able to import this package (same version) from their ``PYTHONPATH``.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, *, workers: int | None = None, max_retries: int = 3
    ) -> None:
        super().__init__()
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError("workers must be a positive int or None")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an int >= 0")
        self._address = address
        self._workers_hint = workers
        self._max_retries = max_retries
        self._remote: Any = None
        self._nodes: collections.Counter[str] = collections.Counter()
        self._pids: dict[int, str] = {}

    @property
    def address(self) -> str | None:
        return self._address

    def _connect(self) -> Any:
        with self._lock:
            if self._remote is not None:
                return self._remote
            try:
                import ray
            except ImportError:
                raise ComputeError(
                    "the ray backend needs the ray package: pip install 'vfl-engine[ray]'"
                ) from None
            if not ray.is_initialized():
                if self._address is not None:
                    _probe(self._address)
                try:
                    ray.init(
                        address=self._address or "auto",
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
                except (ConnectionError, RuntimeError, ValueError) as exc:
                    where = self._address or "auto"
                    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    raise ComputeError(
                        f"cannot connect to the Ray cluster at {where}: {first}"
                    ) from None
            if self._workers_hint is None:
                cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
                self._workers_hint = max(1, int(cpus))
            self._remote = ray.remote(num_cpus=1, max_retries=self._max_retries)(_ray_task)
            return self._remote

    @property
    def workers(self) -> int:
        if self._workers_hint is None:
            self._connect()
        assert self._workers_hint is not None
        return self._workers_hint

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...], index: int) -> Any:
        return self._connect().remote(fn, args)

    def _result(self, handle: Any, index: int) -> Any:
        import ray
        from ray.exceptions import RayError, RayTaskError

        try:
            node, pid, out = ray.get(handle)
        except RayTaskError as exc:
            # The function itself raised: re-raise its own exception (the local backend does).
            cause = exc.as_instanceof_cause()  # type: ignore[no-untyped-call]
            raise cause from None
        except RayError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ComputeError(
                f"Ray lost batch {index} after {self._max_retries} retries: {first}"
            ) from None
        with self._lock:
            self._tasks += 1
            self._nodes[node] += 1
            self._pids[pid] = node
        return out

    def _cancel(self, handle: Any) -> None:
        import ray

        try:
            ray.cancel(handle)
        except Exception:  # noqa: BLE001 - best effort: the task may already be done or gone
            pass

    def worker_pids(self) -> list[int]:
        """The process ids of the Ray workers that have returned a result so far."""
        with self._lock:
            return sorted(self._pids)

    def stats(self) -> ComputeStats:
        with self._lock:
            counts = tuple(sorted(self._nodes.values(), reverse=True))
            return ComputeStats(self.name, len(self._nodes), self._tasks, counts)

    def close(self) -> None:
        """Forget the remote function; the connection to the cluster stays (it is per process)."""
        with self._lock:
            self._remote = None


def make_backend(
    name: str, *, address: str | None = None, workers: int | None = None
) -> ComputeBackend:
    """The backend called ``name`` (``"local"`` or ``"ray"``)."""
    if name == "local":
        if address is not None:
            raise ValueError("--ray-address is only for the ray backend")
        return LocalBackend(workers=workers)
    if name == "ray":
        return RayBackend(address, workers=workers)
    raise ValueError(f"unknown compute backend {name!r}: choose one of {BACKENDS}")


_CURRENT: ComputeBackend | None = None


def configure(backend: ComputeBackend | None) -> ComputeBackend | None:
    """Install ``backend`` as this process's compute backend (``None``: back to the default).

    Returns the previous one. PSI and Paillier batches not handed a backend use it.
    """
    global _CURRENT
    previous, _CURRENT = _CURRENT, backend
    return previous


def current() -> ComputeBackend | None:
    """The backend installed by :func:`configure`, if any."""
    return _CURRENT
