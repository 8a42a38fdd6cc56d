"""The per-party model registry (SQLite): semantic versions, stages, metadata, lineage, rollout.

A version moves through :data:`TRANSITIONS` (candidate -> staging -> production -> deprecated /
archived). At most one version of a name is in production: promoting another one deprecates it,
and the promotion row records which version it displaced, so :meth:`ModelRegistry.rollback`
restores exactly the previous production version (and a second rollback the one before that).
Promotion to production needs held-out validation metrics that meet the :class:`PromotionPolicy`.
Every change writes an audit record when an :class:`AuditLog` is given.

Concurrent jobs: a job that registers at an agreed version first *reserves* it
(:meth:`ModelRegistry.reserve`, one ``BEGIN IMMEDIATE`` transaction, so two processes sharing the
file are serialised). A reserved version is never given to another job, and
:meth:`ModelRegistry.next_free` proposes above every registered *and* reserved version, so two jobs
with the same model name running at once get distinct versions (vfl.jobs: the parties agree).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vfl.governance._audit import AuditLog
from vfl.governance._canonical import Clock, canonical_json, format_time, utc_now
from vfl.governance._errors import RegistryError
from vfl.governance._events import EventKind
from vfl.governance._model import ModelMetadata, ModelVersion, PromotionPolicy, sha256_file
from vfl.governance._stages import (
    MODEL_FORMAT_VERSION,
    PROTOCOL_VERSION,
    SemVer,
    Stage,
    check_transition,
)

__all__ = ["ModelRegistry"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL, version TEXT NOT NULL,
    major INTEGER NOT NULL, minor INTEGER NOT NULL, patch INTEGER NOT NULL,
    stage TEXT NOT NULL, created TEXT NOT NULL, metadata TEXT NOT NULL, parent TEXT,
    artefact_path TEXT NOT NULL, artefact_sha256 TEXT NOT NULL,
    model_format INTEGER NOT NULL, protocol_version INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version TEXT NOT NULL,
    from_stage TEXT, to_stage TEXT NOT NULL, time TEXT NOT NULL, actor TEXT NOT NULL,
    reason TEXT NOT NULL, previous TEXT
);
CREATE TABLE IF NOT EXISTS reservations (
    name TEXT NOT NULL, version TEXT NOT NULL, job_id TEXT NOT NULL, time TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS rollout (
    name TEXT NOT NULL, participant TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY (name, participant)
);
"""


class ModelRegistry:
    """One party's registry file. ``audit_log`` (optional) receives an event for every change."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        party: str,
        audit_log: AuditLog | None = None,
        policy: PromotionPolicy | None = None,
        now: Clock | None = None,
    ) -> None:
        self.path = Path(path)
        self.party = party
        self.audit_log = audit_log
        self.policy = policy or PromotionPolicy()
        self._now: Clock = now or utc_now
        self._lock = threading.RLock()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    # -- reading ------------------------------------------------------------------------------

    def _row(self, row: tuple[Any, ...]) -> ModelVersion:
        name, version, _ma, _mi, _pa, stage, created, meta, parent, path, sha, fmt, proto = row
        return ModelVersion(
            name=name,
            version=version,
            stage=Stage(stage),
            created=created,
            metadata=ModelMetadata.from_dict(json.loads(meta)),
            parent=parent,
            artefact_path=path,
            artefact_sha256=sha,
            model_format=int(fmt),
            protocol_version=int(proto),
        )

    def get(self, name: str, version: str) -> ModelVersion:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM models WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        if row is None:
            raise RegistryError(f"no model {name} version {version} in {self.path}")
        return self._row(row)

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Versions (of ``name``, or all) ordered by name then semantic version."""
        query = "SELECT * FROM models"
        args: tuple[str, ...] = ()
        if name is not None:
            query, args = query + " WHERE name = ?", (name,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY name, major, minor, patch", args).fetchall()
        return [self._row(row) for row in rows]

    def production(self, name: str) -> ModelVersion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM models WHERE name = ? AND stage = ?", (name, Stage.PRODUCTION)
            ).fetchone()
        return None if row is None else self._row(row)

    def history(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT version, from_stage, to_stage, time, actor, reason, previous "
                "FROM history WHERE name = ? ORDER BY id",
                (name,),
            ).fetchall()
        keys = ("version", "from_stage", "to_stage", "time", "actor", "reason", "previous")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def verify_artefact(self, name: str, version: str) -> None:
        """Raise :class:`RegistryError` if the artefact file's SHA-256 changed."""
        model = self.get(name, version)
        actual = sha256_file(model.artefact_path)
        if actual != model.artefact_sha256:
            raise RegistryError(f"{model.label}: artefact {model.artefact_path} hash changed")

    def next_free(self, name: str) -> SemVer:
        """The version to propose for the next registration of ``name``: the highest registered
        or reserved version with its minor part bumped, or ``0.1.0``."""
        with self._lock:
            taken = self._db.execute(
                "SELECT version FROM models WHERE name = ? "
                "UNION SELECT version FROM reservations WHERE name = ?",
                (name, name),
            ).fetchall()
        versions = [SemVer.parse(v) for (v,) in taken]
        return max(versions).bump("minor") if versions else SemVer(0, 1, 0)

    def reservation(self, name: str, version: str) -> str | None:
        """The job id holding a reservation of ``name`` ``version``, or ``None``."""
        with self._lock:
            row = self._db.execute(
                "SELECT job_id FROM reservations WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
        return None if row is None else str(row[0])

    # -- writing ------------------------------------------------------------------------------

    def reserve(self, name: str, version: str, *, job_id: str) -> bool:
        """Reserve ``version`` of ``name`` for ``job_id``, atomically; ``False`` if it is taken
        (registered, or reserved by another job). The job's other reservations of ``name`` are
        released in the same transaction; reserving again for the same job is a no-op."""
        semver = SemVer.parse(version)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                registered = self._db.execute(
                    "SELECT 1 FROM models WHERE name = ? AND version = ?", (name, str(semver))
                ).fetchone()
                holder = self._db.execute(
                    "SELECT job_id FROM reservations WHERE name = ? AND version = ?",
                    (name, str(semver)),
                ).fetchone()
                if registered is not None or (holder is not None and holder[0] != job_id):
                    self._db.execute("ROLLBACK")
                    return False
                self._db.execute(
                    "DELETE FROM reservations WHERE name = ? AND job_id = ? AND version != ?",
                    (name, job_id, str(semver)),
                )
                if holder is None:
                    self._db.execute(
                        "INSERT INTO reservations VALUES (?, ?, ?, ?)",
                        (name, str(semver), job_id, format_time(self._now())),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return True

    def release(self, name: str, *, job_id: str) -> None:
        """Drop every reservation of ``name`` held by ``job_id``."""
        with self._lock:
            self._db.execute(
                "DELETE FROM reservations WHERE name = ? AND job_id = ?", (name, job_id)
            )

    def _audit(self, event: EventKind, details: Mapping[str, Any], actor: str) -> None:
        if self.audit_log is not None:
            self.audit_log.append(event, details, actor=actor)

    def register(
        self,
        name: str,
        *,
        artefact: str | os.PathLike[str],
        metadata: ModelMetadata,
        actor: str,
        version: str | None = None,
        bump: str = "minor",
        parent: str | None = None,
        model_format: int = MODEL_FORMAT_VERSION,
        protocol_version: int = PROTOCOL_VERSION,
        reservation: str | None = None,
    ) -> ModelVersion:
        """Register a new version as ``candidate``; ``version`` defaults to the latest bumped.

        ``version`` must be above every registered version, unless ``reservation`` names the
        job that reserved it (:meth:`reserve`): a reserved version may sit below one a
        concurrent job registered first. The reservation is consumed."""
        if not name:
            raise RegistryError("a model needs a name")
        canonical_json(metadata.to_dict())
        artefact_path = Path(artefact).resolve()
        if not artefact_path.is_file():
            raise RegistryError(f"model artefact {artefact_path} does not exist")
        sha = sha256_file(artefact_path)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                semver = self._insert(
                    name,
                    version=version,
                    bump=bump,
                    parent=parent,
                    reservation=reservation,
                    row=(sha, artefact_path, metadata, model_format, protocol_version),
                    actor=actor,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        model = self.get(name, str(semver))
        self._audit(
            EventKind.MODEL_REGISTERED,
            {
                "model": name,
                "version": model.version,
                "parent": parent,
                "artefact_sha256": sha,
                "data_version": metadata.data_version,
                "job_id": metadata.job_id,
                "model_format": model_format,
                "protocol_version": protocol_version,
            },
            actor,
        )
        return model

    def _insert(
        self,
        name: str,
        *,
        version: str | None,
        bump: str,
        parent: str | None,
        reservation: str | None,
        row: tuple[str, Path, ModelMetadata, int, int],
        actor: str,
    ) -> SemVer:
        """The checks and rows of :meth:`register` (the caller holds the transaction)."""
        sha, artefact_path, metadata, model_format, protocol_version = row
        existing = [
            SemVer.parse(v)
            for (v,) in self._db.execute("SELECT version FROM models WHERE name = ?", (name,))
        ]
        latest = max(existing, default=None)
        semver = (
            SemVer.parse(version)
            if version is not None
            else (SemVer(0, 1, 0) if latest is None else latest.bump(bump))
        )
        holder = self.reservation(name, str(semver))
        if holder is not None and holder != reservation:
            raise RegistryError(f"model {name} version {semver} is reserved by job {holder}")
        if semver in existing:
            raise RegistryError(f"model {name} version {semver} is already registered")
        if reservation is None and latest is not None and semver <= latest:
            raise RegistryError(f"model {name} version {semver} is not above {latest}")
        if reservation is not None and holder is None:
            raise RegistryError(
                f"model {name} version {semver} is not reserved by job {reservation}"
            )
        if parent is not None:
            self.get(name, parent)
        created = format_time(self._now())
        self._db.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                str(semver),
                semver.major,
                semver.minor,
                semver.patch,
                Stage.CANDIDATE,
                created,
                canonical_json(metadata.to_dict()).decode("utf-8"),
                parent,
                str(artefact_path),
                sha,
                model_format,
                protocol_version,
            ),
        )
        self._history(name, str(semver), None, Stage.CANDIDATE, actor, "registered", None)
        self._db.execute(
            "DELETE FROM reservations WHERE name = ? AND version = ?", (name, str(semver))
        )
        return semver

    def _history(
        self,
        name: str,
        version: str,
        from_stage: Stage | None,
        to_stage: Stage,
        actor: str,
        reason: str,
        previous: str | None,
    ) -> None:
        self._db.execute(
            "INSERT INTO history (name, version, from_stage, to_stage, time, actor, reason, "
            "previous) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                version,
                from_stage,
                to_stage,
                format_time(self._now()),
                actor,
                reason,
                previous,
            ),
        )

    def _set_stage(self, model: ModelVersion, stage: Stage) -> None:
        self._db.execute(
            "UPDATE models SET stage = ? WHERE name = ? AND version = ?",
            (stage, model.name, model.version),
        )

    def check_transition(self, name: str, version: str, to: Stage) -> ModelVersion:
        """Raise if ``version`` cannot move to ``to`` now (transition table and policy)."""
        model = self.get(name, version)
        check_transition(model.stage, to, label=model.label)
        if to is Stage.PRODUCTION:
            self.policy.check(model)
        return model

    def transition(
        self, name: str, version: str, to: Stage | str, *, actor: str, reason: str = ""
    ) -> ModelVersion:
        """Move a version to stage ``to``; promotion to production deprecates the current one."""
        target = Stage(to)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                model = self.check_transition(name, version, target)
                displaced = self.production(name) if target is Stage.PRODUCTION else None
                if displaced is not None:
                    self._set_stage(displaced, Stage.DEPRECATED)
                    self._history(
                        name,
                        displaced.version,
                        Stage.PRODUCTION,
                        Stage.DEPRECATED,
                        actor,
                        f"replaced by {version}",
                        None,
                    )
                self._set_stage(model, target)
                self._history(
                    name,
                    version,
                    model.stage,
                    target,
                    actor,
                    reason or "transition",
                    None if displaced is None else displaced.version,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._audit(
            EventKind.MODEL_STAGE,
            {
                "model": name,
                "version": version,
                "from": str(model.stage),
                "to": str(target),
                "replaced": None if displaced is None else displaced.version,
                "reason": reason,
            },
            actor,
        )
        return self.get(name, version)

    def promote(
        self, name: str, version: str, *, actor: str, to: Stage | str = Stage.PRODUCTION
    ) -> ModelVersion:
        """Promote to ``to`` (staging or production)."""
        target = Stage(to)
        if target not in (Stage.STAGING, Stage.PRODUCTION):
            raise RegistryError(f"promote goes to staging or production, not {target}")
        return self.transition(name, version, target, actor=actor, reason="promoted")

    def _previous_production(self, name: str, version: str) -> str | None:
        row = self._db.execute(
            "SELECT previous FROM history WHERE name = ? AND version = ? AND to_stage = ? "
            "ORDER BY id DESC LIMIT 1",
            (name, version, Stage.PRODUCTION),
        ).fetchone()
        return None if row is None else row[0]

    def check_rollback(self, name: str) -> tuple[ModelVersion, ModelVersion]:
        """``(current, previous)`` production versions, or raise if no rollback is possible."""
        with self._lock:
            current = self.production(name)
            if current is None:
                raise RegistryError(f"model {name} has no production version to roll back")
            previous = self._previous_production(name, current.version)
            if previous is None:
                raise RegistryError(f"{current.label} has no previous production version")
            restored = self.get(name, previous)
        check_transition(restored.stage, Stage.PRODUCTION, label=restored.label)
        return current, restored

    def rollback(self, name: str, *, actor: str, reason: str = "") -> ModelVersion:
        """Deprecate the production version and restore the one it displaced; return that one."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                current, restored = self.check_rollback(name)
                self._set_stage(current, Stage.DEPRECATED)
                self._history(
                    name,
                    current.version,
                    Stage.PRODUCTION,
                    Stage.DEPRECATED,
                    actor,
                    reason or "rolled back",
                    None,
                )
                self._set_stage(restored, Stage.PRODUCTION)
                self._history(
                    name,
                    restored.version,
                    restored.stage,
                    Stage.PRODUCTION,
                    actor,
                    f"rollback from {current.version}",
                    self._previous_production(name, restored.version),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._audit(
            EventKind.MODEL_ROLLBACK,
            {"model": name, "from": current.version, "to": restored.version, "reason": reason},
            actor,
        )
        return self.get(name, restored.version)

    def set_rollout(self, name: str, *, participant: str, version: str, actor: str) -> None:
        """Staged rollout: ``participant`` runs ``version`` (which must be staging or production)."""
        model = self.get(name, version)
        if model.stage not in (Stage.STAGING, Stage.PRODUCTION):
            raise RegistryError(
                f"{model.label} is {model.stage}; only staging or production versions roll out"
            )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO rollout (name, participant, version) VALUES (?, ?, ?)",
                (name, participant, version),
            )
        self._audit(
            EventKind.MODEL_ROLLOUT,
            {"model": name, "participant": participant, "version": version},
            actor,
        )

    def rollout(self, name: str) -> dict[str, str]:
        """The staged-rollout plan: participant -> version."""
        with self._lock:
            rows = self._db.execute(
                "SELECT participant, version FROM rollout WHERE name = ? ORDER BY participant",
                (name,),
            ).fetchall()
        return {str(p): str(v) for p, v in rows}

    def version_for(self, name: str, participant: str) -> ModelVersion:
        """The version ``participant`` runs: its rollout entry, else the production version."""
        plan = self.rollout(name)
        if participant in plan:
            return self.get(name, plan[participant])
        current = self.production(name)
        if current is None:
            raise RegistryError(f"model {name} has no production version for {participant}")
        return current

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
