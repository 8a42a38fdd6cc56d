"""One open job session at a node: its verifier, codecs, keyring and per-(peer, topic) inbox."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from protocols.codecs import CodecContext, CodecRegistry, Keyring
from protocols.errors import ChannelTimeout, InboxLimit, LocalProtocolError, PeerDown
from protocols.limits import InboxLimits
from protocols.verify import Verifier

__all__ = ["Session", "CLOSE_TOPIC"]

CLOSE_TOPIC = "_vfl/close"


class Session:
    """Inbound state of one (job, session) at one party. Thread-safe."""

    def __init__(
        self, *, verifier: Verifier, codecs: CodecRegistry, limits: InboxLimits | None = None
    ) -> None:
        self.verifier = verifier
        self.codecs = codecs
        self.limits = limits or InboxLimits()
        self.keyring = Keyring()
        self.codec_context = CodecContext(
            keyring=self.keyring, max_payload_bytes=self.limits.max_payload_bytes
        )
        self._cond = threading.Condition()
        self._queues: dict[tuple[str, str], deque[Any]] = {}
        self._closed_peers: set[str] = set()
        self._closed = False

    def put(self, sender: str, topic: str, value: Any) -> None:
        with self._cond:
            if topic == CLOSE_TOPIC:
                self._closed_peers.add(sender)
            else:
                self._queues.setdefault((sender, topic), deque()).append(value)
            self._cond.notify_all()

    def peer_closed(self, peer: str) -> bool:
        """``True`` once ``peer`` said it leaves this session (a clean close)."""
        with self._cond:
            return peer in self._closed_peers

    def admit(self, sender: str, topic: str) -> InboxLimit | None:
        """The refusal of one more message from ``sender`` on ``topic`` (see
        :mod:`protocols.limits`), or ``None``."""
        if topic == CLOSE_TOPIC:
            return None
        with self._cond:
            queue = self._queues.get((sender, topic))
            waiting = sum(1 for (p, _), q in self._queues.items() if p == sender and q)
            return self.limits.admit(
                sender, topic, queued=len(queue or ()), topics_waiting=waiting,
                is_new_topic=not queue,
            )  # fmt: skip

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def get(
        self,
        peer: str,
        topic: str,
        *,
        timeout: float,
        peer_down: Callable[[str], str | None],
        party: str,
    ) -> Any:
        """The next message from ``peer`` on ``topic``; ``PeerDown`` / ``ChannelTimeout`` else.

        ``peer_down(peer)`` returns a reason when the peer is known to be down.
        """
        deadline = time.monotonic() + timeout
        key = (peer, topic)
        with self._cond:
            while True:
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
                if self._closed:
                    raise LocalProtocolError(f"channel of {party!r} is closed")
                if peer in self._closed_peers:
                    raise PeerDown(f"peer {peer!r} closed the session (waiting on {topic!r})")
                reason = peer_down(peer)
                if reason is not None:
                    raise PeerDown(f"peer {peer!r} is down: {reason} (waiting on {topic!r})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout(
                        f"{party!r} got nothing from {peer!r} on {topic!r} in {timeout:g} s"
                    )
                # Wake regularly to re-check the peer's health even without a notification.
                self._cond.wait(min(left, 0.5))
