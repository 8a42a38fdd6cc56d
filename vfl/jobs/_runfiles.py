"""The run directory's live files: ``status.json``, ``events.jsonl`` and ``result.json``.

The layout is the contract read by the dashboard, the Prometheus endpoint and ``vfl report``
(docs/governance.md, "What a job writes"): ``status.json`` is the latest snapshot, replaced
atomically (:func:`vfl._atomic.atomic_write`); ``events.jsonl`` is append-only,
one JSON object per line, flushed per line; ``result.json`` is written once, atomically, at the
end of a job that succeeded. Files are created 0600 and the run directory 0700.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vfl._atomic import atomic_write
from vfl._liveness import process_owner

__all__ = ["RunFiles", "write_json_atomic", "jsonable"]

PHASES = ("starting", "psi", "train", "evaluate", "done", "failed")


def jsonable(value: Any) -> Any:
    """A strict-JSON view: numpy to Python, non-finite floats to ``None``, dataclasses and objects
    with ``to_dict``/``to_json`` to dicts, anything else unknown to its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, bytes):
        return jsonable(value.tolist())
    for method in ("to_dict", "to_json"):
        convert = getattr(value, method, None)
        if callable(convert):
            return jsonable(convert())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically, mode 0600 (:func:`vfl._atomic.atomic_write`)."""
    atomic_write(path, json.dumps(jsonable(data), indent=1, allow_nan=False) + "\n")


class RunFiles:
    """Writes one party's run directory for one job (thread-safe; ``now`` is unix time)."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        job_id: str,
        party: str,
        job_type: str,
        label_party: str | None,
        parties: list[str],
        total_rounds: int | None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for folder in (self.run_dir, self.run_dir.parent, self.run_dir.parent.parent):
            os.chmod(folder, 0o700)
        self._now = now or time.time
        self._lock = threading.Lock()
        self.events_path = self.run_dir / "events.jsonl"
        self.status_path = self.run_dir / "status.json"
        self.result_path = self.run_dir / "result.json"
        # A rerun of the same job id starts a fresh record of it.
        for stale in (self.events_path, self.result_path):
            stale.unlink(missing_ok=True)
        fd = os.open(self.events_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._events = os.fdopen(fd, "a", encoding="utf-8")
        started = self._now()
        self.status: dict[str, Any] = {
            "job_id": job_id,
            "party": party,
            "type": job_type,
            "label_party": label_party,
            "parties": sorted(parties),
            "phase": "starting",
            "round": 0,
            "total_rounds": total_rounds,
            "started": started,
            "updated": started,
            "metrics": {},
            "bytes_sent": 0,
            "bytes_received": 0,
            "peers": {
                p: {"last_seen": None, "bytes_sent": 0, "bytes_received": 0}
                for p in parties
                if p != party
            },
            "epsilon": None,
            "delta": None,
            "crypto_seconds": None,
            "crypto_share": None,
            "error": None,
            # Which process writes this run: a later vfl run / serve marks it failed if it died.
            "owner": process_owner(),
        }
        self._write_status()

    def _write_status(self) -> None:
        self.status["updated"] = self._now()
        write_json_atomic(self.status_path, self.status)

    def update(self, **fields: Any) -> None:
        """Change status fields (``metrics`` is merged, others replaced) and rewrite the file."""
        with self._lock:
            for key, value in fields.items():
                if key not in self.status:
                    raise KeyError(f"status.json has no field {key!r}")
                if key == "metrics":
                    self.status["metrics"] = {**self.status["metrics"], **dict(value)}
                else:
                    self.status[key] = value
            self._write_status()

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event line ``{"t", "kind", ...}`` and flush it; return the event."""
        line = {"t": self._now(), "kind": kind, **jsonable(fields)}
        text = json.dumps(line, allow_nan=False, separators=(",", ":"))
        with self._lock:
            self._events.write(text + "\n")
            self._events.flush()
        return line

    def result(self, result: Mapping[str, Any]) -> None:
        """Write ``result.json`` (the object ``vfl run --json`` prints)."""
        with self._lock:
            write_json_atomic(self.result_path, result)

    def close(self) -> None:
        with self._lock:
            if not self._events.closed:
                self._events.close()
