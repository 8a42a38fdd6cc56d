"""Which process owns a run, and whether it is still alive: so a run whose process died
(``kill -9``, a crash, a reboot) is never left in a live phase such as ``"train"`` forever.

``status.json`` records its writer as ``owner = {"pid", "host", "start"}``, where ``start`` is the
process start time in clock ticks since boot (``/proc/PID/stat`` field 22), so a pid reused by a
later process does not pass for the dead one. :func:`mark_dead_runs` (run by ``vfl run`` and
``vfl serve`` at start) marks such runs ``failed`` with the reason; the dashboard shows a run of a
dead owner as failed even before that (:func:`owner_alive`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["process_owner", "owner_alive", "dead_owner_error", "mark_dead_runs"]

logger = logging.getLogger("vfl.jobs")
FINAL_PHASES = ("done", "failed")


def _start_ticks(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot, or ``None`` (gone, not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (the command name) is in parentheses and may contain spaces: split after it.
    fields = stat.rpartition(")")[2].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] is field 3
    except (IndexError, ValueError):
        return None


def process_owner() -> dict[str, Any]:
    """This process as the owner of a run: ``{"pid", "host", "start"}``."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "start": _start_ticks(pid)}


def owner_alive(owner: Any) -> bool | None:
    """``True`` / ``False`` if the owner process is alive / gone; ``None`` if this host cannot
    tell (no owner recorded, another host)."""
    if not isinstance(owner, Mapping) or owner.get("host") != socket.gethostname():
        return None
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    start = owner.get("start")
    if isinstance(start, int) and not isinstance(start, bool):
        return _start_ticks(pid) == start
    return True


def dead_owner_error(status: Mapping[str, Any]) -> str | None:
    """The failure reason of a run whose ``status.json`` is live but whose owner is gone."""
    if status.get("phase") in FINAL_PHASES or owner_alive(status.get("owner")) is not False:
        return None
    owner = status["owner"]
    return f"process {owner['pid']} died without finishing (in phase {status.get('phase')!r})"


def mark_dead_runs(work_dir: str | os.PathLike[str]) -> list[str]:
    """Mark every run under ``WORK_DIR/runs`` whose owner died ``failed`` (status, event);
    returns one line per run marked."""
    marked = []
    for path in sorted(Path(work_dir).glob("runs/*/*/status.json")):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(status, dict):
            continue
        error = dead_owner_error(status)
        if error is None:
            continue
        now = time.time()
        phase = status.get("phase")
        status.update(phase="failed", error=error, updated=now)
        partial = path.with_name(".status.json.partial")  # as RunFiles writes it: atomic, 0600
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(status, indent=1) + "\n")
        os.replace(partial, path)
        event = {"t": now, "kind": "phase", "phase": "failed", "seconds": None, "error": error}
        with (path.parent / "events.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, separators=(",", ":")) + "\n")
        line = f"run {status.get('job_id')} at {status.get('party')}: {error}; marked failed"
        logger.warning("%s (was %r)", line, phase)
        marked.append(line)
    return marked
