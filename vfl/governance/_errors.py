"""Errors of the governance package (audit trail and model registry)."""

from __future__ import annotations

from vfl.errors import VflError

__all__ = [
    "GovernanceError",
    "AuditError",
    "AuditTampered",
    "RegistryError",
    "StageTransitionError",
    "PromotionBlocked",
    "IncompatibleVersion",
]


class GovernanceError(VflError):
    """Base class of the audit-trail and model-registry errors."""


class AuditError(GovernanceError):
    """The audit log was used wrongly (wrong key, unreadable file, non-JSON details...)."""


class AuditTampered(AuditError):
    """Verification found a bad record; ``seq`` names the first one and ``reason`` says why."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit log tampered at record {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class RegistryError(GovernanceError):
    """A model-registry operation was refused (unknown model or version, bad version string...)."""


class StageTransitionError(RegistryError):
    """The requested stage change is not one of the allowed transitions."""


class PromotionBlocked(RegistryError):
    """Promotion to production lacks held-out validation metrics or misses the threshold."""


class IncompatibleVersion(RegistryError):
    """A model format or protocol version that a peer cannot handle."""
