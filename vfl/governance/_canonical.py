"""Canonical JSON and times shared by the audit log and the model registry.

Canonical JSON is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)`` encoded as UTF-8, so equal values always give equal bytes
(the property the hash chain relies on). numpy scalars and arrays are converted with
``.item()`` / ``.tolist()``; anything else that JSON cannot represent is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from vfl.governance._errors import GovernanceError

__all__ = ["canonical_json", "Clock", "utc_now", "format_time", "parse_time"]

Clock = Callable[[], datetime]


def _default(value: Any) -> Any:
    for attr in ("tolist", "item"):
        method = getattr(value, attr, None)
        if callable(method):
            return method()
    raise GovernanceError(f"value of type {type(value).__name__} is not JSON-serialisable")


def canonical_json(value: Any) -> bytes:
    """The canonical UTF-8 JSON encoding of ``value`` (see the module docstring)."""
    try:
        text = json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_default,
        )
    except ValueError as exc:
        raise GovernanceError(f"value is not canonical JSON: {exc}") from None
    return text.encode("utf-8")


def utc_now() -> datetime:
    """The current time in UTC (the default ``now=`` clock)."""
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, e.g. ``2026-11-27T07:00:00.000000+00:00``."""
    if moment.tzinfo is None:
        raise GovernanceError("times must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    """Parse an ISO date or datetime; a naive value is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GovernanceError(f"not an ISO date or time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
