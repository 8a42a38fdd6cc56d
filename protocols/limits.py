"""Bounds an authenticated but hostile peer cannot exceed at a receiver.

Signatures stop strangers; these stop a federation member from exhausting a receiver's memory
or disk. Per channel (``PartyNode.channel(..., limits=...)``, ``InMemoryNetwork(limits=...)``):

* ``topics``: the topics the job's protocols use (``fnmatch`` patterns such as ``"fl/*"``);
  an envelope on any other topic is refused with :class:`~protocols.errors.InboxLimit`.
  ``None`` accepts every topic (the per-queue bounds still hold). The channel's own topics
  (``_vfl/*``: session agreement, close) are always accepted.
* ``max_queued``: messages waiting, unread, per (peer, topic); one more is refused.
* ``max_topics``: distinct topics with messages waiting per peer (so a peer cannot spread
  ``max_queued`` over unboundedly many topics).
* ``max_payload_bytes``: the largest payload accepted; over gRPC it is checked on the signed
  envelope's size, before a byte of the payload is read or spooled to disk.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from protocols.codecs import MAX_PAYLOAD_BYTES
from protocols.errors import InboxLimit, LocalProtocolError

__all__ = ["InboxLimits", "CHANNEL_TOPICS", "DEFAULT_MAX_QUEUED", "DEFAULT_MAX_TOPICS"]

CHANNEL_TOPICS = "_vfl/*"
DEFAULT_MAX_QUEUED = 10_000
DEFAULT_MAX_TOPICS = 256


@dataclass(frozen=True)
class InboxLimits:
    """What a receiver queues from each peer (see the module doc)."""

    topics: tuple[str, ...] | None = None
    max_queued: int = DEFAULT_MAX_QUEUED
    max_topics: int = DEFAULT_MAX_TOPICS
    max_payload_bytes: int = MAX_PAYLOAD_BYTES

    def __post_init__(self) -> None:
        if self.max_queued < 1 or self.max_topics < 1 or self.max_payload_bytes < 1:
            raise LocalProtocolError("inbox limits must be positive")
        if self.topics is not None and (
            isinstance(self.topics, str) or not all(isinstance(t, str) for t in self.topics)
        ):
            raise LocalProtocolError("InboxLimits.topics is a tuple of topic patterns")

    @classmethod
    def for_topics(cls, topics: Iterable[str], **kwargs: int) -> InboxLimits:
        """Limits accepting only ``topics`` (patterns) besides the channel's own."""
        return cls(topics=tuple(topics), **kwargs)

    def expects(self, topic: str) -> bool:
        """Whether ``topic`` is one this channel accepts."""
        if self.topics is None or fnmatch.fnmatchcase(topic, CHANNEL_TOPICS):
            return True
        return any(fnmatch.fnmatchcase(topic, pattern) for pattern in self.topics)

    def admit(
        self, sender: str, topic: str, *, queued: int, topics_waiting: int, is_new_topic: bool
    ) -> InboxLimit | None:
        """The refusal for one more message from ``sender`` on ``topic``, or ``None``.

        ``queued``: messages of (sender, topic) waiting now; ``topics_waiting``: topics of
        ``sender`` with messages waiting; ``is_new_topic``: ``topic`` is not one of them."""
        if not self.expects(topic):
            return InboxLimit(f"topic {topic!r} from {sender!r} is not one this job uses")
        if queued >= self.max_queued:
            return InboxLimit(
                f"queue of {sender!r} on {topic!r} is full ({self.max_queued} unread messages)"
            )
        if is_new_topic and topics_waiting >= self.max_topics:
            return InboxLimit(
                f"{sender!r} has messages waiting on {topics_waiting} topics (limit {self.max_topics})"
            )
        return None
