"""A channel wrapper that counts payload bytes per peer, both ways, and when each peer was last heard.

The count is the payload size before the envelope and codec framing: arrays by ``nbytes``,
Paillier ciphertexts by the key's fixed ciphertext width, ints by their byte length, containers
and typed messages (dataclasses) summed over their items and fields. It does not re-encode anything, so it costs nothing next to the transport. The counters
feed ``bytes_sent`` of the result, the per-peer figures of ``status.json`` and the monitor's
silent-party rule (a peer whose received bytes did not grow during a round was silent in it).

It also adds up, per peer, the wall time spent blocked in ``recv`` waiting for that peer
(``recv_seconds``: the peer's compute plus the network, as this party observes it), and, when the
transport has a heartbeat monitor (:class:`PeerLatency`, e.g. the gRPC node's
:class:`protocols.grpc.PeerMonitor`), reports each peer's heartbeat round-trip time.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from protocols.channel import Channel

__all__ = ["MeteredChannel", "PeerLatency", "PeerTraffic", "payload_bytes"]


@runtime_checkable
class PeerLatency(Protocol):
    """A heartbeat monitor's view of the peers (:class:`protocols.grpc.PeerMonitor` has it)."""

    def rtt(self, peer: str) -> float | None:
        """Round-trip time of the latest answered heartbeat, in seconds."""
        ...

    def last_seen(self, peer: str) -> float | None:
        """Unix time the peer was last seen up."""
        ...


def payload_bytes(payload: Any) -> int:
    """Approximate encoded size of ``payload`` in bytes."""
    if payload is None or isinstance(payload, bool):
        return 1
    if isinstance(payload, bytes | bytearray):
        return len(payload)
    if isinstance(payload, np.ndarray):
        return int(payload.nbytes)
    if isinstance(payload, int):
        return (payload.bit_length() + 8) // 8
    if isinstance(payload, float):
        return 8
    if isinstance(payload, str):
        return len(payload.encode())
    if isinstance(payload, Mapping):
        return sum(payload_bytes(k) + payload_bytes(v) for k, v in payload.items())
    if isinstance(payload, list | tuple):
        return sum(payload_bytes(v) for v in payload)
    if dataclasses.is_dataclass(payload) and not isinstance(payload, type):
        return sum(payload_bytes(getattr(payload, f.name)) for f in dataclasses.fields(payload))
    key = getattr(payload, "public_key", None)
    width = getattr(key, "ciphertext_bytes", None)
    size = getattr(payload, "size", None)
    if isinstance(width, int) and isinstance(size, int):
        return width * size
    to_bytes = getattr(payload, "to_bytes", None)
    if callable(to_bytes):
        return len(to_bytes())
    return 0


@dataclass(frozen=True)
class PeerTraffic:
    """What this party exchanged with one peer so far; ``last_seen`` is unix time or ``None``."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    last_seen: float | None = None
    recv_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "last_seen": self.last_seen,
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
        }


class MeteredChannel(Channel):
    """Delegates to ``inner`` and counts :func:`payload_bytes` per peer, sent and received.

    ``now`` is the injected wall clock for ``last_seen`` (default :func:`time.time`). ``latency``
    is the transport's heartbeat monitor; by default ``inner.monitor`` when the inner channel
    exposes one that is a :class:`PeerLatency`. Thread-safe: protocols may send from a helper
    thread while the main thread receives.
    """

    def __init__(
        self,
        inner: Channel,
        *,
        now: Callable[[], float] | None = None,
        latency: PeerLatency | None = None,
    ) -> None:
        self._inner = inner
        self._now = now or time.time
        found = getattr(inner, "monitor", None) if latency is None else latency
        self._latency = found if isinstance(found, PeerLatency) else None
        self._lock = threading.Lock()
        self._traffic: dict[str, PeerTraffic] = {}
        self._waits: deque[tuple[str, float, float]] = deque(maxlen=1 << 14)

    @property
    def party(self) -> str:
        return self._inner.party

    @property
    def peers(self) -> tuple[str, ...]:
        return self._inner.peers

    def _add(
        self,
        peer: str,
        *,
        sent: int = 0,
        received: int = 0,
        waited: tuple[float, float] | None = None,
    ) -> None:
        with self._lock:
            if waited is not None:
                self._waits.append((peer, *waited))
            old = self._traffic.get(peer, PeerTraffic())
            self._traffic[peer] = PeerTraffic(
                bytes_sent=old.bytes_sent + sent,
                bytes_received=old.bytes_received + received,
                messages_sent=old.messages_sent + (1 if waited is None and not received else 0),
                messages_received=old.messages_received + (1 if received else 0),
                last_seen=self._now() if received else old.last_seen,
                recv_seconds=old.recv_seconds + (0.0 if waited is None else waited[1] - waited[0]),
            )

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._inner.send(peer, topic, payload, round=round)
        self._add(peer, sent=payload_bytes(payload))

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        start = time.perf_counter()
        try:
            payload = self._inner.recv(peer, topic, timeout=timeout)
        except BaseException:
            self._add(peer, waited=(start, time.perf_counter()))
            raise
        waited = (start, time.perf_counter())
        self._add(peer, received=max(1, payload_bytes(payload)), waited=waited)
        return payload

    def broadcast(
        self, topic: str, payload: Any, *, peers: Iterable[str] | None = None, round: int = 0
    ) -> None:
        for peer in self.peers if peers is None else peers:
            self.send(peer, topic, payload, round=round)

    def attest(self, statement: bytes) -> bytes:
        return self._inner.attest(statement)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self._inner.check_attestation(signer, statement, signature)

    def switch_session(self, session_id: str) -> None:
        self._inner.switch_session(session_id)

    def close(self) -> None:
        self._inner.close()

    # -- counters -----------------------------------------------------------------------------

    def traffic(self) -> dict[str, PeerTraffic]:
        """Per-peer counters now (a copy); peers never talked to are absent."""
        with self._lock:
            return dict(self._traffic)

    def waited_since(self, start: float) -> dict[str, float]:
        """Seconds spent blocked in ``recv`` per peer since ``start`` (a
        :func:`time.perf_counter` value), the waits clipped to ``[start, now]``; exact for the
        latest 16384 receives, a lower bound beyond."""
        out: dict[str, float] = {}
        with self._lock:
            for peer, begin, end in reversed(self._waits):
                if end <= start:
                    break
                out[peer] = out.get(peer, 0.0) + end - max(begin, start)
        return out

    def latency_ms(self) -> dict[str, float]:
        """Heartbeat round-trip time per peer in milliseconds (peers not yet measured absent;
        empty when the transport has no heartbeat monitor, as in memory)."""
        if self._latency is None:
            return {}
        out = {}
        for peer in self.peers:
            rtt = self._latency.rtt(peer)
            if rtt is not None:
                out[peer] = 1000.0 * rtt
        return out

    def heartbeat_seen(self) -> dict[str, float]:
        """Unix time each peer was last seen up by the heartbeat monitor (empty without one)."""
        if self._latency is None:
            return {}
        out = {}
        for peer in self.peers:
            seen = self._latency.last_seen(peer)
            if seen is not None:
                out[peer] = seen
        return out

    @property
    def bytes_sent(self) -> int:
        with self._lock:
            return sum(t.bytes_sent for t in self._traffic.values())

    @property
    def bytes_received(self) -> int:
        with self._lock:
            return sum(t.bytes_received for t in self._traffic.values())

    @property
    def messages_sent(self) -> int:
        with self._lock:
            return sum(t.messages_sent for t in self._traffic.values())
