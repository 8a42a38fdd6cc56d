"""Errors of the learning layer and the command line."""

from __future__ import annotations

__all__ = ["VflError", "ConfigError", "OverlapTooSmall"]


class VflError(Exception):
    """Base class of errors raised by :mod:`vfl`."""


class ConfigError(VflError, ValueError):
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
