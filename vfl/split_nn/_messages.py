"""Wire messages of the split NN control flow (typed, frozen; encoded by the ``struct`` codec).

Topics, in order: ``snn/hello`` (both ways: :class:`Hello`), ``snn/key`` (public keys),
``snn/plan`` (label -> feature party: :class:`Plan`), ``snn/resume`` (label -> feature party:
:class:`Resume`), then per epoch ``snn/ctl`` (:class:`Control`), the interactive layer's arrays
(:mod:`vfl.split_nn._interactive`) and ``snn/verdict`` (:class:`Verdict`). A payload of the wrong
type is refused with :class:`vfl.errors.VflError` naming the peer and the topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from protocols.channel import Channel
from protocols.messages import message_type
from vfl.errors import VflError

__all__ = [
    "TOPIC_CTL",
    "TOPIC_HELLO",
    "TOPIC_PLAN",
    "TOPIC_RESUME",
    "TOPIC_VERDICT",
    "Control",
    "Hello",
    "Plan",
    "Resume",
    "Verdict",
    "receive",
]

TOPIC_HELLO = "snn/hello"
TOPIC_PLAN = "snn/plan"
TOPIC_RESUME = "snn/resume"
TOPIC_CTL = "snn/ctl"
TOPIC_VERDICT = "snn/verdict"

M = TypeVar("M")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)  # the codec turns it into a CodecError naming the message


@message_type("snn.Hello")
@dataclass(frozen=True)
class Hello:
    """A party's session opening: the shared config's fingerprint, its row count, whether it
    trains; a feature party adds its embedding width ``dim`` and its checkpointed epochs."""

    config: str
    rows: int
    train: bool
    dim: int | None = None
    checkpoints: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check(isinstance(self.config, str), "Hello.config must be a string")
        _check(_is_int(self.rows) and isinstance(self.train, bool), "Hello.rows / train")
        _check(self.dim is None or _is_int(self.dim), "Hello.dim must be an integer")
        _check(
            isinstance(self.checkpoints, tuple) and all(_is_int(e) for e in self.checkpoints),
            "Hello.checkpoints must be a tuple of epochs",
        )


@message_type("snn.Plan")
@dataclass(frozen=True)
class Plan:
    """The interactive layer's fan-in (every party's embedding widths summed), for its init."""

    fan_in: int

    def __post_init__(self) -> None:
        _check(_is_int(self.fan_in), "Plan.fan_in must be an integer")


@message_type("snn.Resume")
@dataclass(frozen=True)
class Resume:
    """The last epoch every party has a checkpoint of (resume after it), or ``None``."""

    epoch: int | None

    def __post_init__(self) -> None:
        _check(self.epoch is None or _is_int(self.epoch), "Resume.epoch must be an integer")


@message_type("snn.Control")
@dataclass(frozen=True)
class Control:
    """Before an epoch: ``stop`` ends training (early stopping or the last epoch done)."""

    stop: bool

    def __post_init__(self) -> None:
        _check(isinstance(self.stop, bool), "Control.stop must be a bool")


@message_type("snn.Verdict")
@dataclass(frozen=True)
class Verdict:
    """After an epoch: ``best`` when the label party's validation loss improved."""

    best: bool

    def __post_init__(self) -> None:
        _check(isinstance(self.best, bool), "Verdict.best must be a bool")


def receive(channel: Channel, peer: str, topic: str, kind: type[M]) -> M:
    """``channel.recv(peer, topic)``, refused unless it is a ``kind`` message."""
    payload: Any = channel.recv(peer, topic)
    if not isinstance(payload, kind):
        raise VflError(
            f"{peer} sent a malformed {topic} message "
            f"(expected {kind.__name__}, got {type(payload).__name__})"
        )
    return payload
