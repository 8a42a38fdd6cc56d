"""The job seam: what a job kind implements, what it is given and what it returns.

A job kind (``psi``, ``hetero_lr``, ``split_nn``, ``fedavg``; later ``predict``, ``binning``,
``secureboost``) is one object implementing :class:`JobKind`, registered once in
:data:`vfl.jobs.KINDS` (docs/jobs.md, "Adding a job type"). The runner (:func:`vfl.jobs.run_job`)
does the same steps for every kind: handshake -> align (PSI, when ``kind.aligns``) -> split
(train / test, when ``kind.splits``) -> ``kind.run(ctx, settings)`` -> finish (registration,
audit, ``result.json``). A kind decides and computes; it never imports :mod:`vfl.jobs` or gRPC.

>>> PartResult(metrics={"test_auc": 0.9}).metrics["test_auc"]
0.9
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import pandas as pd

from protocols.channel import Channel
from vfl.core._spec import CryptoSection, Job

__all__ = ["JobKind", "ModelPart", "PartResult", "PartyContext", "RunTracker"]

S = TypeVar("S")


class RunTracker(Protocol):
    """What a kind reports while it runs (the runner's :class:`vfl.jobs.JobTracker`)."""

    def phase(self, name: str) -> None:
        """Enter phase ``name`` (``train``, ``evaluate``)."""

    def round(
        self,
        *,
        metrics: Mapping[str, float],
        seconds: float,
        expected: Sequence[str] | None = None,
        responded: Sequence[str] | None = None,
        epsilon: float | None = None,
        epsilon_round: float | None = None,
        delta: float | None = None,
        crypto_seconds: float | None = None,
        contributions: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """One finished epoch or round (event, status, audit record, monitor alerts)."""

    def crypto(self, *, scheme: str, key_bits: int | None, purpose: str) -> None:
        """The scheme and key size this party actually used for ``purpose``."""

    def privacy_spent(self, *, epsilon: float, delta: float) -> None:
        """A privacy budget spent up front (label DP)."""


@dataclass(frozen=True)
class PartyContext:
    """Everything one party's side of a job is given by the runner.

    ``train`` / ``test`` are this party's PSI-aligned rows (same order at every party) when the
    kind aligns; ``None`` otherwise (``fedavg`` reads its own files). ``run_dir`` is
    ``WORK_DIR/runs/JOB_ID/PARTY``, where the kind saves its model part.
    """

    job: Job
    party: str
    peers: tuple[str, ...]
    channel: Channel
    run_dir: Path
    tracker: RunTracker
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None
    progress: bool = False

    @property
    def is_label_party(self) -> bool:
        return self.party == self.job.job.label_party

    def on_epoch(self, info: Mapping[str, Any]) -> None:
        """The per-epoch hook of the vertical learners (hetero LR, split NN): one tracker round.

        ``info`` is ``{"round", "metrics", "seconds"}``; non-numeric metrics are left out."""
        metrics = info.get("metrics") or {}
        self.tracker.round(
            metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
            seconds=float(info.get("seconds") or 0.0),
        )

    def record_training_crypto(self, crypto: Mapping[str, Any]) -> None:
        """Record the scheme and key size a vertical learner trained with (its ``crypto`` out)."""
        key_bits = crypto.get("key_bits")
        self.tracker.crypto(
            scheme=str(crypto["scheme"]),
            key_bits=key_bits if isinstance(key_bits, int) else None,
            purpose="train",
        )

    def aligned(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``(train, test)``; a :class:`TypeError` for a kind that does not align."""
        if self.train is None or self.test is None:
            raise TypeError(f"job kind {self.job.job.type!r} was run without aligned rows")
        return self.train, self.test


@dataclass(frozen=True)
class ModelPart:
    """A trained model part that the finisher registers in ``WORK_DIR/registry.db``.

    ``parties`` agree the version together (every party of a vertical model; a fedavg
    aggregator alone); ``holder`` is the party whose metrics are the model's validation
    metrics; ``weight_norm`` is this party's contribution figure, when the kind has one."""

    path: Path
    parties: tuple[str, ...]
    holder: str | None
    weight_norm: float | None = None


@dataclass(frozen=True)
class PartResult:
    """What ``kind.run`` returns; the finisher turns it into ``result.json`` (``vfl run --json``).

    ``metrics`` are this party's (test metrics at the label party), ``timing`` seconds per phase
    (merged with the runner's ``psi`` and ``total``), ``crypto`` the scheme and key size actually
    used, ``extra`` the kind's own JSON fields (``aligned_csv``, ``role``, ...)."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    timing: Mapping[str, float | Sequence[float]] = field(default_factory=dict)
    crypto: Mapping[str, Any] = field(default_factory=dict)
    history: Sequence[Mapping[str, Any]] | None = None
    privacy: Mapping[str, Any] | None = None
    model: ModelPart | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class JobKind(Protocol[S]):
    """One job type: its settings parser, what the runner must do for it, and its run.

    Attributes the runner and the job-file parser read:

    - ``name``: the ``job.type`` string of the job file;
    - ``aligns``: PSI-align every party's rows before ``run`` (``False``: horizontal, no PSI);
    - ``splits``: split the aligned rows into train / test (``evaluation`` section);
    - ``needs_label``: ``job.label_party`` and its ``label_column`` are required, and feature
      parties must not have one;
    - ``needs_features``: each party's data must have numeric feature columns;
    - ``schemes``: the ``crypto.scheme`` values this kind accepts;
    - ``trains``: the kind trains (the runner enters phase ``train`` before ``run``).
    """

    name: str
    aligns: bool
    splits: bool
    needs_label: bool
    needs_features: bool
    schemes: tuple[str, ...]
    trains: bool

    def parse_model(
        self, table: Mapping[str, Any], crypto: CryptoSection, *, allow_small_keys: bool
    ) -> S:
        """The typed settings of the ``[model]`` table; :class:`ConfigError` naming the key."""
        ...

    def check(self, job: Job, party: str) -> None:
        """Configuration errors at ``party`` that need the whole job, raised before any message."""
        ...

    def run(self, ctx: PartyContext, settings: S) -> PartResult:
        """This party's side of the job, after handshake (and alignment when ``aligns``)."""
        ...
