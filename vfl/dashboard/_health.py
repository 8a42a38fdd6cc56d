"""Peer health of a running party node, for the dashboard and ``/metrics``.

Two sources, both public API of :class:`protocols.grpc.PartyNode`: the heartbeat monitor's
verdict (``node.monitor.down_reason(peer)``: a peer is *down* after its heartbeats failed), and
the gRPC connectivity of the node's channel to each peer (``channel.subscribe``, watched without
asking it to connect). A peer is

* ``down``        -- the heartbeats declared it down (the reason is given);
* ``up``          -- its connection is ``READY`` (a completed mutual-TLS handshake);
* ``unreachable`` -- connecting to it fails (``TRANSIENT_FAILURE``), not yet declared down;
* ``unknown``     -- no connection yet (parties start in any order) or the channel is idle.

Each snapshot also gives the heartbeat monitor's measures of the peer: ``latency_ms``, the
round-trip time of the latest answered heartbeat (``PeerMonitor.rtt``), and ``last_seen``, the
unix time the peer was last seen up (``PeerMonitor.last_seen``); both ``None`` until measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

__all__ = ["NodeLike", "PeerHealth", "PEER_STATES"]

PEER_STATES = ("up", "down", "unreachable", "unknown")


class _MonitorLike(Protocol):
    def down_reason(self, peer: str) -> str | None: ...

    def rtt(self, peer: str) -> float | None: ...

    def last_seen(self, peer: str) -> float | None: ...


class NodeLike(Protocol):
    """What the dashboard reads of a node (:class:`protocols.grpc.PartyNode` has it)."""

    @property
    def party(self) -> str: ...

    @property
    def peer_channels(self) -> Mapping[str, Any]: ...

    @property
    def monitor(self) -> _MonitorLike: ...


class PeerHealth:
    """Watches a node's peer channels; :meth:`snapshot` gives each peer's state."""

    def __init__(self, node: NodeLike, *, now: Callable[[], float] = time.time) -> None:
        self._node = node
        self._now = now
        self._lock = threading.Lock()
        self._connectivity: dict[str, str] = {}
        self._since: dict[str, float] = {}
        self._subscribed: list[tuple[Any, Callable[[Any], None]]] = []

    def start(self) -> None:
        for peer, channel in sorted(self._node.peer_channels.items()):
            callback = self._watcher(peer)
            channel.subscribe(callback, try_to_connect=False)
            self._subscribed.append((channel, callback))

    def stop(self) -> None:
        for channel, callback in self._subscribed:
            channel.unsubscribe(callback)
        self._subscribed.clear()

    def _watcher(self, peer: str) -> Callable[[Any], None]:
        def on_state(state: Any) -> None:
            name = str(getattr(state, "name", state))
            with self._lock:
                if self._connectivity.get(peer) != name:
                    self._connectivity[peer] = name
                    self._since[peer] = self._now()

        return on_state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """``{peer: {"state", "reason", "since", "latency_ms", "last_seen"}}``; ``since``: when
        the connection last changed (module docstring for the others)."""
        out: dict[str, dict[str, Any]] = {}
        for peer in sorted(self._node.peer_channels):
            monitor = self._node.monitor
            reason = monitor.down_reason(peer)
            rtt = monitor.rtt(peer)
            with self._lock:
                connectivity = self._connectivity.get(peer)
                since = self._since.get(peer)
            if reason is not None:
                state = "down"
            elif connectivity == "READY":
                state = "up"
            elif connectivity == "TRANSIENT_FAILURE":
                state = "unreachable"
            else:
                state = "unknown"
            out[peer] = {
                "state": state,
                "reason": reason,
                "since": since,
                "latency_ms": None if rtt is None else 1000.0 * rtt,
                "last_seen": monitor.last_seen(peer),
            }
        return out
