"""Wire messages of hetero LR (typed, frozen; encoded by the ``struct`` codec, never pickled).

Ciphertexts travel as ``crypto.paillier.EncryptedArray`` (no metadata, see ``_protocol``), public
keys as ``PaillierPublicKey``, pairwise seeds as raw ``bytes``; everything else is one of the
dataclasses below. The codec checks only the structure it decodes, so :func:`expect` also checks
every field's type and range and names the peer and topic when something is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from protocols.channel import Channel
from protocols.messages import message_type
from vfl.errors import VflError

__all__ = [
    "EpochEnd",
    "Hello",
    "Refusal",
    "Revealed",
    "ScoreRequest",
    "Setup",
    "expect",
]

M = TypeVar("M")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _count(v: Any) -> bool:
    return _is_int(v) and v >= 1


def _ints(v: Any) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


@message_type("hetero_lr.Setup")
@dataclass(frozen=True)
class Setup:
    """G -> H_j, first: the training plan and the public sizes every party derives shapes from."""

    version: int
    n_rows: int
    n_tasks: int
    plan: dict[str, Any]
    beta_public: bool
    feature_parties: list[str]
    key_bits: int
    label_columns: int


@message_type("hetero_lr.Hello")
@dataclass(frozen=True)
class Hello:
    """H_j -> G: accepts the plan; its row and column counts (the shape of its gradient)."""

    version: int
    n_rows: int
    n_features: int


@message_type("hetero_lr.Refusal")
@dataclass(frozen=True)
class Refusal:
    """H_j -> G instead of :class:`Hello`: why this party refuses the plan (one line)."""

    error: str


@message_type("hetero_lr.Revealed")
@dataclass(frozen=True)
class Revealed:
    """Exact integers: decrypted residues (gradient, cross terms) or masked scores."""

    values: list[int]


@message_type("hetero_lr.ScoreRequest")
@dataclass(frozen=True)
class ScoreRequest:
    """G -> H_j: send masked scores on ``n_rows`` rows; ``nonce`` names the request."""

    n_rows: int
    nonce: str


@message_type("hetero_lr.EpochEnd")
@dataclass(frozen=True)
class EpochEnd:
    """G -> H_j after every epoch: keep these weights as the best so far, stop training."""

    best: bool
    stop: bool


_CHECKS: dict[type[Any], dict[str, Callable[[Any], bool]]] = {
    Setup: {
        "version": _is_int,
        "n_rows": _count,
        "n_tasks": _count,
        "plan": lambda v: isinstance(v, dict),
        "beta_public": lambda v: isinstance(v, bool),
        "feature_parties": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
        "key_bits": lambda v: _is_int(v) and v >= 0,
        "label_columns": _count,
    },
    Hello: {"version": _is_int, "n_rows": _count, "n_features": _count},
    Refusal: {"error": lambda v: isinstance(v, str)},
    Revealed: {"values": _ints},
    ScoreRequest: {"n_rows": _count, "nonce": lambda v: isinstance(v, str)},
    EpochEnd: {"best": lambda v: isinstance(v, bool), "stop": lambda v: isinstance(v, bool)},
}


def validate(message: Any, peer: str, topic: str) -> None:
    """Raise :class:`VflError` naming the first field of ``message`` with a wrong type or range."""
    checks = _CHECKS[type(message)]
    for f in fields(message):
        if not checks[f.name](getattr(message, f.name)):
            raise VflError(f"{peer} sent a malformed {type(message).__name__} on {topic}: {f.name}")


def expect(
    channel: Channel,
    peer: str,
    topic: str,
    kind: type[M] | tuple[type[Any], ...],
    *,
    timeout: float | None = None,
) -> M:
    """Receive one message of ``kind`` (a type or a tuple of types) and validate its fields."""
    message = channel.recv(peer, topic, timeout=timeout)
    if not isinstance(message, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        names = " or ".join(k.__name__ for k in kinds)
        raise VflError(f"{peer} sent {type(message).__name__} on {topic}, expected {names}")
    validate(message, peer, topic)
    return message  # type: ignore[return-value]
