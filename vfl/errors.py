"""Errors of the learning layer and the command line.

One configuration-error hierarchy for the whole engine: :class:`ConfigError` here is a
:class:`protocols.errors.ConfigError` (a federation file, certificate or channel setting is
wrong), so ``except protocols.errors.ConfigError`` catches a bad job file too, and both are
``ValueError``.
"""

from __future__ import annotations

from protocols.errors import ConfigError as _ProtocolConfigError

__all__ = ["VflError", "ConfigError", "OverlapTooSmall"]


class VflError(Exception):
    """Base class of errors raised by :mod:`vfl`."""


class ConfigError(VflError, _ProtocolConfigError):
    """A job file, federation file or command-line argument is wrong; the message names the key."""


class OverlapTooSmall(VflError):
    """PSI found no shared ids, or too few to train on (docs/jobs.md, "Too small an overlap").

    Every party computes the same decision from the same intersection size and job file, so every
    party raises it, each naming its own count: ``0 of 2,638 ids are shared with retailer``.
    """

    def __init__(
        self, message: str, *, shared: int, ids: int, peers: tuple[str, ...], minimum: int
    ) -> None:
        super().__init__(message)
        self.shared = shared
        self.ids = ids
        self.peers = peers
        self.minimum = minimum
