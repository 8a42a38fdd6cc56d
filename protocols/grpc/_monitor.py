"""Peer liveness: heartbeats over the standard gRPC health service, and peer-down detection.

Every ``interval`` seconds (default 30) the monitor calls ``grpc.health.v1.Health/Check`` on
each peer. It also watches the gRPC channel's connectivity: when a connection breaks (the peer
process died, the network failed) it checks at once. A peer is *down* after ``max_failures``
consecutive failed checks (retried ``retry_delay`` apart); waiting ``recv`` calls then fail with
``PeerDown`` instead of hanging. A later successful check marks the peer up again. A peer that
has never been seen up (no answered heartbeat, no ready connection, no verified message from
it) is not declared down, because parties start in any order: sends to it keep retrying and
receives wait until their own deadlines.

A peer that goes down when nothing needs it (``expected_gone(peer)``: it closed every job session
it had with this node cleanly, or no session is open) is logged at INFO, not as a warning: a
finished job is not an incident.

A heartbeat that fails on the TLS handshake is classified at once (``classify(peer, details)``, a
direct handshake, :mod:`protocols.grpc._tls_probe`): a certificate problem marks the peer
*untrusted* and down with that reason immediately, seen before or not, because no retry can fix it.

Each answered heartbeat also measures the round-trip time of the ``Check`` call (:meth:`rtt`,
seconds from sending the request to reading the reply, TLS connection already up) and when the
peer was last seen up (:meth:`last_seen`, unix time of the latest answered heartbeat, completed
connection or verified message).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = ["PeerMonitor", "DEFAULT_HEARTBEAT_INTERVAL"]

_log = logging.getLogger("protocols.grpc")
DEFAULT_HEARTBEAT_INTERVAL = 30.0


class PeerMonitor:
    """Background heartbeats to every peer of one node."""

    def __init__(
        self,
        channels: Mapping[str, grpc.Channel],
        *,
        interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        check_timeout: float = 3.0,
        max_failures: int = 3,
        retry_delay: float = 0.5,
        on_change: Callable[[], None] = lambda: None,
        now: Callable[[], float] = time.time,
        expected_gone: Callable[[str], bool] = lambda peer: False,
        classify: Callable[[str, str], str | None] = lambda peer, details: None,
    ) -> None:
        self._stubs = {peer: health_pb2_grpc.HealthStub(ch) for peer, ch in channels.items()}
        self._channels = dict(channels)
        self._interval = interval
        self._check_timeout = check_timeout
        self._max_failures = max_failures
        self._retry_delay = retry_delay
        self._on_change = on_change
        self._expected_gone = expected_gone
        self._classify = classify
        self._untrusted: dict[str, str] = {}
        self._lock = threading.Lock()
        self._down: dict[str, str] = {}
        self._failures = dict.fromkeys(channels, 0)
        self._seen: set[str] = set()
        self._now = now
        self._rtt: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vfl-heartbeat", daemon=True)
        self._callbacks: list[tuple[grpc.Channel, Callable[[Any], None]]] = []

    def start(self) -> None:
        for peer, channel in self._channels.items():
            callback = self._watcher(peer)
            channel.subscribe(callback, try_to_connect=True)
            self._callbacks.append((channel, callback))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._urgent.set()
        for channel, callback in self._callbacks:
            channel.unsubscribe(callback)
        if self._thread.is_alive():
            self._thread.join(self._check_timeout + 1.0)

    def down_reason(self, peer: str) -> str | None:
        """Why ``peer`` is considered down, or ``None`` if it is up (or unknown)."""
        with self._lock:
            return self._down.get(peer)

    def untrusted(self, peer: str) -> str | None:
        """Why TLS with ``peer`` cannot work (a certificate problem), or ``None``."""
        with self._lock:
            return self._untrusted.get(peer)

    def classify_failure(self, peer: str, details: str) -> str | None:
        """Classify a failed call's status text: the certificate problem it shows, or ``None``.

        Only texts that mention TLS are probed; a verdict is kept until the peer answers again."""
        from protocols.grpc._tls_probe import looks_like_tls_failure

        known = self.untrusted(peer)
        if known is not None or not looks_like_tls_failure(details):
            return known
        verdict = self._classify(peer, details)
        if verdict is not None:
            with self._lock:
                first = peer not in self._untrusted
                self._untrusted[peer] = verdict
                self._down[peer] = verdict
            if first:
                _log.error("%s", verdict)
                self._on_change()
        return verdict

    def rtt(self, peer: str) -> float | None:
        """Round-trip time in seconds of the latest answered heartbeat to ``peer`` (``None``
        before the first answer). A failed heartbeat leaves the last measured value."""
        with self._lock:
            return self._rtt.get(peer)

    def last_seen(self, peer: str) -> float | None:
        """Unix time ``peer`` was last seen up (answered a heartbeat, completed a TLS connection
        or sent a verified message), or ``None``."""
        with self._lock:
            return self._last_seen.get(peer)

    def mark_seen(self, peer: str) -> None:
        """Record that ``peer`` is up (it answered, connected, or sent a verified message)."""
        with self._lock:
            if peer in self._failures:
                self._last_seen[peer] = self._now()
            if peer in self._failures and peer not in self._seen:
                self._seen.add(peer)
                self._failures[peer] = 0  # failures before it was ever up do not count

    def _watcher(self, peer: str) -> Callable[[Any], None]:
        def on_state(state: Any) -> None:
            # A connection that is no longer READY (the peer closed it, crashed, or the network
            # failed) is checked at once instead of at the next heartbeat.
            if state == grpc.ChannelConnectivity.READY:
                self.mark_seen(peer)  # a completed mutual-TLS handshake: the peer is up
            elif state != grpc.ChannelConnectivity.CONNECTING:
                _log.info("connection to %s: %s", peer, state)
                self._urgent.set()

        return on_state

    def check(self, peer: str) -> bool:
        """One heartbeat to ``peer``; updates its state; ``True`` if it answered SERVING."""
        start = time.perf_counter()
        try:
            reply = self._stubs[peer].Check(
                health_pb2.HealthCheckRequest(service=""), timeout=self._check_timeout
            )
            rtt = time.perf_counter() - start
            ok = reply.status == health_pb2.HealthCheckResponse.SERVING
            detail = "" if ok else "not serving"
        except grpc.RpcError as exc:
            ok, detail = False, f"{exc.code().name}: {exc.details()}"
            if exc.code() == grpc.StatusCode.UNAVAILABLE and self.classify_failure(
                peer, str(exc.details() or "")
            ):
                return False
        changed = False
        with self._lock:
            if ok:
                self._untrusted.pop(peer, None)
                self._seen.add(peer)
                self._failures[peer] = 0
                self._rtt[peer] = rtt
                self._last_seen[peer] = self._now()
                changed = self._down.pop(peer, None) is not None
            else:
                self._failures[peer] += 1
                limit_reached = self._failures[peer] >= self._max_failures
                if limit_reached and peer in self._seen and peer not in self._down:
                    self._down[peer] = f"{self._failures[peer]} heartbeats failed ({detail})"
                    changed = True
            failing = self._failures[peer] > 0
        if changed:
            if ok or self._expected_gone(peer):
                _log.info("peer %s is %s", peer, "up" if ok else f"gone (its jobs ended): {detail}")
            else:
                _log.warning("peer %s is down: %s", peer, detail)
            self._on_change()
        return ok and not failing

    def _run(self) -> None:
        next_beat = time.monotonic()
        while not self._stop.is_set():
            urgent = self._urgent.is_set()
            if urgent or time.monotonic() >= next_beat:
                self._urgent.clear()
                retry = False
                for peer in self._stubs:
                    if self._stop.is_set():
                        return
                    if not self.check(peer):
                        retry = True
                next_beat = time.monotonic() + self._interval
                if retry:
                    # A failing peer is re-checked quickly until it is declared down or recovers.
                    with self._lock:
                        pending = any(
                            0 < n and p in self._seen and p not in self._down
                            for p, n in self._failures.items()
                        )
                    if pending:
                        next_beat = time.monotonic() + self._retry_delay
            self._urgent.wait(max(0.0, next_beat - time.monotonic()))
