"""Coordinated promote / rollback across the parties' registries, over a Channel.

Two phases (as in two-phase commit): the coordinator sends the proposal
``{action, model, version}`` on topic ``registry/propose``; every party checks it against its own
registry (stage transitions, promotion policy, previous production version) without changing
anything and answers ``{ok, error}`` on ``registry/vote``. Only if every vote is yes does the
coordinator send ``commit`` (else ``abort``) on ``registry/decision``; each party applies the change
and answers with its resulting production version on ``registry/done``, which the coordinator
checks is the same everywhere. So either every registry changes or none does (short of a crash
between commit and apply, which the ``registry/done`` check reports).

The proposal also carries the model format and protocol version of the version that would run
(the coordinator's copy): a party whose code cannot load that format or speak that protocol votes
no with :class:`IncompatibleVersion`'s message, so an old peer refuses clearly instead of failing
later at serving time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from protocols.channel import Channel
from vfl.governance._errors import GovernanceError, RegistryError
from vfl.governance._registry import ModelRegistry
from vfl.governance._stages import (
    SUPPORTED_MODEL_FORMATS,
    SUPPORTED_PROTOCOLS,
    Stage,
    check_compatibility,
)

__all__ = ["RegistryChange", "coordinate_change", "follow_change"]

_PROPOSE, _VOTE, _DECISION, _DONE = (
    "registry/propose",
    "registry/vote",
    "registry/decision",
    "registry/done",
)
_ACTIONS = ("promote", "rollback")


@dataclass(frozen=True)
class RegistryChange:
    """A change every party applies: ``promote`` (to production) ``version``, or ``rollback``."""

    action: str
    model: str
    version: str | None = None
    model_format: int | None = None
    protocol_version: int | None = None

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise RegistryError(f"unknown registry action {self.action!r} (promote or rollback)")
        if self.action == "promote" and not self.version:
            raise RegistryError("a promote change needs a version")

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "model": self.model,
            "version": self.version,
            "model_format": self.model_format,
            "protocol_version": self.protocol_version,
        }

    @classmethod
    def from_dict(cls, data: Any) -> RegistryChange:
        if not isinstance(data, dict):
            raise RegistryError("a registry proposal must be an object")
        version = data.get("version")
        fmt, proto = data.get("model_format"), data.get("protocol_version")
        for key, value in (("model_format", fmt), ("protocol_version", proto)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise RegistryError(f"a registry proposal's {key} must be an integer")
        return cls(
            str(data.get("action")),
            str(data.get("model")),
            None if version is None else str(version),
            fmt,
            proto,
        )


def _check(registry: ModelRegistry, change: RegistryChange, *, peer: bool) -> None:
    # The coordinator proposes a version its own code wrote; a peer checks it can run it.
    if peer and change.model_format is not None and change.protocol_version is not None:
        check_compatibility(
            label=f"{change.model} {change.version or '(previous production)'}",
            model_format=change.model_format,
            protocol_version=change.protocol_version,
            peer=registry.party,
            peer_model_formats=SUPPORTED_MODEL_FORMATS,
            peer_protocols=SUPPORTED_PROTOCOLS,
        )
    if change.action == "promote":
        registry.check_transition(change.model, str(change.version), Stage.PRODUCTION)
    else:
        registry.check_rollback(change.model)


def _apply(registry: ModelRegistry, change: RegistryChange, actor: str) -> str:
    if change.action == "promote":
        return registry.promote(change.model, str(change.version), actor=actor).version
    return registry.rollback(change.model, actor=actor, reason="coordinated rollback").version


def _vote(registry: ModelRegistry, change: RegistryChange, *, peer: bool) -> dict[str, Any]:
    try:
        _check(registry, change, peer=peer)
    except GovernanceError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "error": ""}


def coordinate_change(
    channel: Channel,
    registry: ModelRegistry,
    change: RegistryChange,
    *,
    actor: str,
    timeout: float | None = None,
) -> str:
    """Run the change at every party (coordinator side); return the production version after it.

    Raises :class:`RegistryError` naming the party that refused (nothing changed anywhere) or
    whose resulting production version differs.
    """
    try:
        target = (
            registry.get(change.model, str(change.version))
            if change.action == "promote"
            else registry.check_rollback(change.model)[1]
        )
    except GovernanceError:
        pass  # the coordinator's own vote below refuses it, and every party aborts
    else:
        change = dataclasses.replace(
            change, model_format=target.model_format, protocol_version=target.protocol_version
        )
    channel.broadcast(_PROPOSE, change.to_dict())
    votes = {channel.party: _vote(registry, change, peer=False)}
    votes.update(channel.gather(_VOTE, timeout=timeout))
    refused = {party: vote for party, vote in votes.items() if not vote.get("ok")}
    decision = "abort" if refused else "commit"
    channel.broadcast(_DECISION, decision)
    if refused:
        party = sorted(refused)[0]
        raise RegistryError(f"{change.action} refused by {party}: {refused[party].get('error')}")
    results = {channel.party: _apply(registry, change, actor)}
    results.update({p: str(v) for p, v in channel.gather(_DONE, timeout=timeout).items()})
    mine = results[channel.party]
    for party, version in sorted(results.items()):
        if version != mine:
            raise RegistryError(
                f"after {change.action}, {party} runs {change.model} {version}, not {mine}"
            )
    return mine


def follow_change(
    channel: Channel,
    registry: ModelRegistry,
    *,
    coordinator: str,
    actor: str,
    timeout: float | None = None,
) -> str | None:
    """The non-coordinator side: vote, then apply on commit. Returns the new production version,
    or ``None`` when the coordinator aborted."""
    change = RegistryChange.from_dict(channel.recv(coordinator, _PROPOSE, timeout=timeout))
    channel.send(coordinator, _VOTE, _vote(registry, change, peer=True))
    decision = channel.recv(coordinator, _DECISION, timeout=timeout)
    if decision != "commit":
        return None
    version = _apply(registry, change, actor)
    channel.send(coordinator, _DONE, version)
    return version
