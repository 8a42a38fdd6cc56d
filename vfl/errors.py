"""Errors of the learning layer and the command line."""

from __future__ import annotations

__all__ = ["VflError", "ConfigError"]


class VflError(Exception):
    """Base class of errors raised by :mod:`vfl`."""


class ConfigError(VflError, ValueError):
    """A job file, federation file or command-line argument is wrong; the message names the key."""
