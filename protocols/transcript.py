"""A record of every delivered message, decoded, for tests of correctness and leakage.

Privacy claims are tested on the transcript: what each party actually received
(``transcript.received_by("bank")``). Only messages that passed verification are recorded.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Message", "Transcript"]


@dataclass(frozen=True)
class Message:
    """One delivered message: who sent what to whom, decoded, and its encoded size in bytes."""

    sender: str
    receiver: str
    topic: str
    round: int
    seq: int
    payload: Any
    nbytes: int


class Transcript:
    """Delivered messages in delivery order. Thread-safe; every query returns a new list."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def record(self, message: Message) -> None:
        with self._lock:
            self._messages.append(message)

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def __iter__(self) -> Iterator[Message]:
        return iter(self.messages)

    def received_by(self, party: str) -> list[Message]:
        """Everything ``party`` received."""
        return [m for m in self.messages if m.receiver == party]

    def sent_by(self, party: str) -> list[Message]:
        """Everything ``party`` sent that was delivered."""
        return [m for m in self.messages if m.sender == party]

    def on_topic(self, pattern: str) -> list[Message]:
        """Messages whose topic equals ``pattern`` or matches it as a glob (``"psi/*"``)."""
        return [
            m for m in self.messages if m.topic == pattern or fnmatch.fnmatchcase(m.topic, pattern)
        ]

    def between(self, sender: str, receiver: str) -> list[Message]:
        """Messages from ``sender`` to ``receiver``."""
        return [m for m in self.messages if m.sender == sender and m.receiver == receiver]

    def bytes_sent(self, party: str | None = None) -> int:
        """Encoded payload bytes delivered from ``party`` (from everyone if ``None``)."""
        return sum(m.nbytes for m in self.messages if party is None or m.sender == party)

    def topics(self) -> list[str]:
        """Distinct topics in order of first appearance."""
        return list(dict.fromkeys(m.topic for m in self.messages))
