"""Errors of the learning layer and the command line.

One configuration-error hierarchy for the whole engine: :class:`ConfigError` here is a
:class:`protocols.errors.ConfigError` (a federation file, certificate or channel setting is
wrong), so ``except protocols.errors.ConfigError`` catches a bad job file too, and both are
``ValueError``.
"""

from __future__ import annotations

from protocols.errors import ConfigError as _ProtocolConfigError

__all__ = ["VflError", "ConfigError"]


class VflError(Exception):
    """Base class of errors raised by :mod:`vfl`."""


class ConfigError(VflError, _ProtocolConfigError):
    """A job file, federation file or command-line argument is wrong; the message names the key."""
