"""Read a run directory (``WORK_DIR/runs/JOB_ID/PARTY``) as ``vfl run`` writes it.

Files (the run-files contract): ``status.json`` (latest snapshot), ``result.json`` (the final
``vfl run --json`` object, only once the job ended) and ``events.jsonl`` (one JSON object per
line). A run still going has no ``result.json`` and may end ``events.jsonl`` with a line cut
mid-write: such lines are skipped and counted. A directory with neither ``status.json`` nor
``result.json`` is not a run directory. Plain JSON only: nothing here can execute code.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfl.report._errors import ReportError

__all__ = ["RunFiles", "load_run", "find_work_dir"]

_log = logging.getLogger("vfl.report")


@dataclass(frozen=True)
class RunFiles:
    """The parsed files of one run directory (``None`` for a file the run has not written)."""

    run_dir: Path
    status: Mapping[str, Any] | None
    result: Mapping[str, Any] | None
    events: tuple[Mapping[str, Any], ...]
    skipped_lines: int

    def events_of(self, kind: str) -> list[Mapping[str, Any]]:
        """The events with ``"kind": kind`` in file order."""
        return [e for e in self.events if e.get("kind") == kind]


def _read_object(path: Path) -> Mapping[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} must hold a JSON object")
    return data


def _read_events(path: Path) -> tuple[tuple[Mapping[str, Any], ...], int]:
    if not path.exists():
        return (), 0
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ReportError(f"cannot read {path}: {exc.strerror or exc}") from None
    events: list[Mapping[str, Any]] = []
    skipped = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(event, dict) and isinstance(event.get("kind"), str):
            events.append(event)
        else:
            skipped += 1
    if skipped:
        _log.info("%s: skipped %d unreadable event lines", path, skipped)
    return tuple(events), skipped


def load_run(run_dir: str | os.PathLike[str]) -> RunFiles:
    """Parse ``run_dir``; raise :class:`ReportError` if it is not a run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"no run directory at {path}")
    status = _read_object(path / "status.json")
    result = _read_object(path / "result.json")
    if status is None and result is None:
        raise ReportError(f"{path} is not a run directory (no status.json or result.json)")
    events, skipped = _read_events(path / "events.jsonl")
    return RunFiles(
        run_dir=path, status=status, result=result, events=events, skipped_lines=skipped
    )


def find_work_dir(run_dir: str | os.PathLike[str]) -> Path | None:
    """``RUN_DIR/../../..`` (``WORK_DIR/runs/JOB/PARTY``) when it holds audit.db or registry.db."""
    candidate = Path(run_dir).resolve().parent.parent.parent
    if (candidate / "audit.db").is_file() or (candidate / "registry.db").is_file():
        return candidate
    return None
