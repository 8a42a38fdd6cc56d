"""The report's error: a run directory that cannot be reported on."""

from __future__ import annotations

from vfl.errors import VflError

__all__ = ["ReportError"]


class ReportError(VflError):
    """The run directory is missing, is not a run directory, or holds an unreadable file."""
