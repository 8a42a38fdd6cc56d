"""Read a party's run records from its work directory while a job may still be writing them.

The layout is the work-directory contract (``WORK_DIR/runs/JOB_ID/PARTY/``): ``status.json``
(a snapshot replaced atomically), ``events.jsonl`` (appended one JSON object per line) and
``result.json`` (written at the end only). Readers must tolerate a run in progress: a missing
``status.json`` or ``result.json``, and a last ``events.jsonl`` line cut mid-write, which
:class:`EventsTail` holds back until its newline arrives. A complete line that is not a JSON
object is skipped with a warning. Only the bytes appended since the previous read are parsed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfl._liveness import dead_owner_error

__all__ = ["EventsTail", "RunRef", "RunView", "RunStore", "MAX_EVENTS"]

_log = logging.getLogger("vfl.dashboard")
MAX_EVENTS = 100_000  # events kept per run (the oldest are dropped beyond this)
_FILES = ("status.json", "events.jsonl", "result.json")
_HEAD_BYTES = 256


class EventsTail:
    """The parsed lines of one growing ``events.jsonl``, read incrementally.

    Keeps the byte offset of the last complete line; a file that shrinks, is replaced (a
    different inode) or starts with different bytes than before (a new file that reused the
    inode number) is read again from the start.
    """

    def __init__(self, path: Path, *, max_events: int = MAX_EVENTS) -> None:
        self.path = path
        self._max = max_events
        self._offset = 0
        self._inode: int | None = None
        self._head = b""  # the file's first bytes as last read, to notice a new file
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def read(self) -> tuple[dict[str, Any], ...]:
        """Every complete event line so far (a cut-off last line is not included)."""
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    stat = os.fstat(handle.fileno())
                    same = stat.st_ino == self._inode and stat.st_size >= self._offset
                    if same and self._head:
                        same = handle.read(len(self._head)) == self._head
                    if not same:
                        self._inode, self._offset, self._events = stat.st_ino, 0, []
                    handle.seek(self._offset)
                    chunk = handle.read()
            except FileNotFoundError:
                self._inode, self._offset, self._events, self._head = None, 0, [], b""
                return ()
            if self._offset == 0:
                self._head = chunk[:_HEAD_BYTES]
            complete = chunk.rfind(b"\n") + 1
            for line in chunk[:complete].splitlines():
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict):
                    self._events.append(event)
                else:
                    _log.warning("%s: skipped a line that is not a JSON object", self.path)
            self._offset += complete
            if len(self._events) > self._max:
                del self._events[: len(self._events) - self._max]
            return tuple(self._events)


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or ``None`` when it is missing or not (yet) a JSON object."""
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _log.warning("%s: unreadable (%s)", path, exc)
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class RunRef:
    """One run directory: ``runs/JOB_ID/PARTY``, last modified at ``updated`` (unix time)."""

    job_id: str
    party: str
    path: Path
    updated: float

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "party": self.party, "updated": self.updated}


def _as_float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class RunView:
    """What one run's files say right now."""

    ref: RunRef
    status: Mapping[str, Any] | None
    events: tuple[Mapping[str, Any], ...]
    finished: bool

    def of_kind(self, kind: str) -> list[Mapping[str, Any]]:
        return [e for e in self.events if e.get("kind") == kind]

    @property
    def rounds(self) -> list[Mapping[str, Any]]:
        """Round events with an integer ``round``, in file order."""
        return [
            e
            for e in self.of_kind("round")
            if isinstance(e.get("round"), int) and not isinstance(e.get("round"), bool)
        ]

    @property
    def phase(self) -> str:
        """``status.json``'s phase, else the last phase event's, else ``starting``; ``failed``
        for a run in a live phase whose process died (:mod:`vfl._liveness`)."""
        if self.status is not None and isinstance(self.status.get("phase"), str):
            return "failed" if dead_owner_error(self.status) else str(self.status["phase"])
        phases = [e["phase"] for e in self.of_kind("phase") if isinstance(e.get("phase"), str)]
        return phases[-1] if phases else "starting"

    def metrics(self) -> dict[str, float]:
        """Latest model metrics: the last round's, updated by ``status.json``'s ``metrics``."""
        merged: dict[str, float] = {}
        rounds = self.rounds
        sources: list[object] = [rounds[-1].get("metrics")] if rounds else []
        if self.status is not None:
            sources.append(self.status.get("metrics"))
        for source in sources:
            if isinstance(source, Mapping):
                for name, value in source.items():
                    number = _as_float(value)
                    if isinstance(name, str) and number is not None:
                        merged[name] = number
        return merged

    def status_number(self, key: str) -> float | None:
        return None if self.status is None else _as_float(self.status.get(key))

    def _status_view(self) -> dict[str, Any] | None:
        """``status.json`` as shown: a dead owner's live run says failed, and why."""
        if self.status is None:
            return None
        error = dead_owner_error(self.status)
        return (
            dict(self.status)
            if error is None
            else {**self.status, "phase": "failed", "error": error}
        )

    def to_json(self) -> dict[str, Any]:
        """The ``/api/status`` view of this run (paths relative to the work directory)."""
        psi = self.of_kind("psi")
        return {
            "run": {
                **self.ref.to_json(),
                "run_dir": f"runs/{self.ref.job_id}/{self.ref.party}",
                "finished": self.finished,
                "phase": self.phase,
            },
            "status": self._status_view(),
            "metrics": self.metrics(),
            "rounds": [dict(e) for e in self.rounds],
            "alerts": [dict(e) for e in self.of_kind("alert")],
            "phases": [dict(e) for e in self.of_kind("phase")],
            "psi": dict(psi[-1]) if psi else None,
            "models": [dict(e) for e in self.of_kind("model")],
            "privacy": [dict(e) for e in self.of_kind("privacy")],
        }


class RunStore:
    """The runs under ``WORK_DIR/runs``; caches one :class:`EventsTail` per run."""

    def __init__(self, work_dir: Path | str) -> None:
        self.work_dir = Path(work_dir)
        self._tails: dict[Path, EventsTail] = {}
        self._lock = threading.Lock()

    def runs(self) -> list[RunRef]:
        """Every run directory holding at least one run file, most recently updated first."""
        found = []
        root = self.work_dir / "runs"
        try:
            jobs = sorted(p for p in root.iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
        for job_dir in jobs:
            for run_dir in sorted(p for p in job_dir.iterdir() if p.is_dir()):
                times = []
                for name in _FILES:
                    try:
                        times.append((run_dir / name).stat().st_mtime)
                    except FileNotFoundError:
                        continue
                if times:
                    found.append(RunRef(job_dir.name, run_dir.name, run_dir, max(times)))
        found.sort(key=lambda r: (r.updated, r.job_id, r.party), reverse=True)
        return found

    def find(self, *, job: str | None = None, party: str | None = None) -> RunRef | None:
        """The most recently updated run, optionally of one job and/or party."""
        for ref in self.runs():
            if (job is None or ref.job_id == job) and (party is None or ref.party == party):
                return ref
        return None

    def view(self, ref: RunRef) -> RunView:
        with self._lock:
            tail = self._tails.get(ref.path)
            if tail is None:
                tail = self._tails[ref.path] = EventsTail(ref.path / "events.jsonl")
        return RunView(
            ref=ref,
            status=_read_json(ref.path / "status.json"),
            events=tail.read(),
            finished=(ref.path / "result.json").is_file(),
        )
