"""Fault injection for the in-memory transport: drop, delay, duplicate, reorder, tamper.

Each call adds a rule that matches messages by ``sender``, ``receiver`` and ``topic`` (``None``
matches anything; ``topic`` may be a glob such as ``"psi/*"``) and applies to the next ``count``
matching messages (``count=None``: to all of them). Rules are checked in the order they were
added; the first matching rule with uses left applies. Faults act on the *wire* (envelope bytes
and payload bytes), so tampering is caught by the receiver's signature check, exactly as over
gRPC.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from protocols.errors import LocalProtocolError

__all__ = ["Fault", "FaultKind", "Faults", "flip_last_byte"]


class FaultKind(Enum):
    DROP = "drop"
    DELAY = "delay"
    DUPLICATE = "duplicate"
    REORDER = "reorder"
    TAMPER = "tamper"


Mutation = Callable[[bytes, bytes], tuple[bytes, bytes]]


def flip_last_byte(envelope: bytes, payload: bytes) -> tuple[bytes, bytes]:
    """The default tampering: flip one bit of the payload's last byte."""
    if not payload:
        return envelope, payload
    return envelope, payload[:-1] + bytes([payload[-1] ^ 0x01])


@dataclass
class Fault:
    """One fault rule (mutable only through :class:`Faults`, which holds the lock)."""

    kind: FaultKind
    sender: str | None
    receiver: str | None
    topic: str | None
    remaining: int | None
    seconds: float = 0.0
    mutate: Mutation = flip_last_byte
    applied: int = 0

    def matches(self, sender: str, receiver: str, topic: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.sender is not None and self.sender != sender:
            return False
        if self.receiver is not None and self.receiver != receiver:
            return False
        return self.topic is None or self.topic == topic or fnmatch.fnmatchcase(topic, self.topic)


class Faults:
    """The fault rules of one in-memory network (``net.faults``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def _add(self, fault: Fault) -> Fault:
        if fault.remaining is not None and fault.remaining < 1:
            raise LocalProtocolError("fault count must be at least 1 (or None for every message)")
        with self._lock:
            self._rules.append(fault)
        return fault

    def drop(
        self,
        *,
        sender: str | None = None,
        receiver: str | None = None,
        topic: str | None = None,
        count: int | None = 1,
    ) -> Fault:
        """Lose matching messages."""
        return self._add(Fault(FaultKind.DROP, sender, receiver, topic, count))

    def delay(
        self,
        *,
        seconds: float,
        sender: str | None = None,
        receiver: str | None = None,
        topic: str | None = None,
        count: int | None = 1,
    ) -> Fault:
        """Deliver matching messages ``seconds`` later (in a timer thread)."""
        if seconds < 0:
            raise LocalProtocolError("delay must be non-negative")
        return self._add(Fault(FaultKind.DELAY, sender, receiver, topic, count, seconds=seconds))

    def duplicate(
        self,
        *,
        sender: str | None = None,
        receiver: str | None = None,
        topic: str | None = None,
        count: int | None = 1,
    ) -> Fault:
        """Deliver matching messages twice (the copy is rejected as replayed)."""
        return self._add(Fault(FaultKind.DUPLICATE, sender, receiver, topic, count))

    def reorder(
        self,
        *,
        sender: str | None = None,
        receiver: str | None = None,
        topic: str | None = None,
        count: int | None = 1,
    ) -> Fault:
        """Hold a matching message back and deliver it right after the next message on the same
        sender -> receiver link (it is then rejected as out of order)."""
        return self._add(Fault(FaultKind.REORDER, sender, receiver, topic, count))

    def tamper(
        self,
        *,
        sender: str | None = None,
        receiver: str | None = None,
        topic: str | None = None,
        count: int | None = 1,
        mutate: Mutation = flip_last_byte,
    ) -> Fault:
        """Change matching messages on the wire: ``mutate(envelope_bytes, payload_bytes)``
        returns the altered pair (default: flip one payload bit)."""
        return self._add(Fault(FaultKind.TAMPER, sender, receiver, topic, count, mutate=mutate))

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    def take(self, sender: str, receiver: str, topic: str) -> Fault | None:
        """The first rule matching this message, with one use consumed (transport internal)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(sender, receiver, topic):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    rule.applied += 1
                    return rule
        return None
