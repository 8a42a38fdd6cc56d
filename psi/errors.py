"""Errors of the PSI layer, split by whose fault it was (STYLE.md).

* :class:`PSIUsageError` -- the local caller's input or arguments are wrong (null or duplicate
  ids, an id that cannot be normalised, an unknown reveal mode, too few parties).
* :class:`PSIProtocolError` -- a peer broke the protocol (mismatched parameters, wrong counts or
  shapes, a low-order point that makes a Diffie-Hellman output all-zero).
"""

from __future__ import annotations

__all__ = ["PSIError", "PSIUsageError", "PSIProtocolError"]


class PSIError(Exception):
    """Base class of every error raised by :mod:`psi`."""


class PSIUsageError(PSIError, ValueError):
    """The local caller used the API wrongly or passed bad input (our fault)."""


class PSIProtocolError(PSIError):
    """A peer sent something that violates the protocol (the peer's fault)."""
