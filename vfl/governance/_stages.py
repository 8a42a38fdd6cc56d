"""Model stages, their allowed transitions (data, as in h11), semantic versions, compatibility."""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from vfl.governance._errors import IncompatibleVersion, RegistryError, StageTransitionError

__all__ = [
    "Stage",
    "TRANSITIONS",
    "check_transition",
    "SemVer",
    "MODEL_FORMAT_VERSION",
    "PROTOCOL_VERSION",
    "SUPPORTED_MODEL_FORMATS",
    "SUPPORTED_PROTOCOLS",
    "check_compatibility",
]


class Stage(enum.StrEnum):
    CANDIDATE = "candidate"
    STAGING = "staging"
    PRODUCTION = "production"
    DEPRECATED = "deprecated"
    ARCHIVED = "archived"


# stage -> stages it may move to. production -> deprecated happens when another version is
# promoted or on rollback; deprecated -> production is the rollback path.
TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.CANDIDATE: frozenset({Stage.STAGING, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.PRODUCTION, Stage.CANDIDATE, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.DEPRECATED}),
    Stage.DEPRECATED: frozenset({Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset(),
}


def check_transition(current: Stage, target: Stage, *, label: str) -> None:
    """Raise :class:`StageTransitionError` unless ``current -> target`` is allowed."""
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none"
        raise StageTransitionError(
            f"{label} cannot move from {current} to {target} (allowed: {allowed})"
        )


_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, order=True)
class SemVer:
    """``MAJOR.MINOR.PATCH`` (semver.org 2.0.0 without pre-release or build parts)."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.match(text)
        if match is None:
            raise RegistryError(f"version {text!r} is not MAJOR.MINOR.PATCH")
        return cls(int(match[1]), int(match[2]), int(match[3]))

    def bump(self, part: str) -> SemVer:
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if part == "patch":
            return SemVer(self.major, self.minor, self.patch + 1)
        raise RegistryError(f"unknown version part {part!r} (major, minor or patch)")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


MODEL_FORMAT_VERSION = 1
PROTOCOL_VERSION = 1
SUPPORTED_MODEL_FORMATS: frozenset[int] = frozenset({1})
SUPPORTED_PROTOCOLS: frozenset[int] = frozenset({1})


def check_compatibility(
    *,
    label: str,
    model_format: int,
    protocol_version: int,
    peer: str,
    peer_model_formats: Collection[int],
    peer_protocols: Collection[int],
) -> None:
    """Raise :class:`IncompatibleVersion` if ``peer`` cannot load or serve this model version."""
    if model_format not in peer_model_formats:
        raise IncompatibleVersion(
            f"{label} uses model format {model_format}; peer {peer} supports formats "
            f"{sorted(peer_model_formats)}"
        )
    if protocol_version not in peer_protocols:
        raise IncompatibleVersion(
            f"{label} needs protocol version {protocol_version}; peer {peer} speaks "
            f"{sorted(peer_protocols)}"
        )
