"""One job at one party, as the audit trail, the run files and the monitor see it.

:class:`JobTracker` is what :func:`vfl.jobs.run_job` reports to: every fact goes to the party's
audit log (``WORK_DIR/audit.db``, hash-chained and signed), to the live run files
(``status.json`` / ``events.jsonl``) and, for training rounds, to a :class:`vfl.governance.Monitor`
whose alerts (plateau, dropouts, silent party, slow round) become events, audit records and
warnings. Bytes per peer come from the job's :class:`MeteredChannel`.

The rounds (events, status, audit records, contribution log, alerts) are kept by a
:class:`~vfl.jobs._rounds.RoundLog`; the pure views of the job (``plain``, ``roles``) are in
:mod:`vfl.jobs._views`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vfl.governance import (
    AuditLog,
    EventKind,
    Monitor,
    record_crypto,
    record_data_fingerprint,
    record_epsilon_spent,
    record_hyperparameters,
    record_job_finished,
    record_job_started,
    record_participants,
    record_psi_result,
)
from vfl.jobs._metered import MeteredChannel, PeerTraffic
from vfl.jobs._provenance import PartyIdentity, code_version
from vfl.jobs._rounds import RoundLog
from vfl.jobs._runfiles import RunFiles, jsonable
from vfl.jobs._spec import Job
from vfl.jobs._views import number, plain, roles, total_rounds

__all__ = ["JobTracker"]

logger = logging.getLogger("vfl.jobs")


class JobTracker:
    """Records one job at one party (module docstring). Not thread-safe: call from the job."""

    def __init__(
        self,
        job: Job,
        *,
        party: str,
        channel: MeteredChannel,
        work_dir: Path,
        identity: PartyIdentity,
    ) -> None:
        self.job = job
        self.party = party
        self.channel = channel
        self.identity = identity
        self.peers = sorted(p for p in job.parties if p != party)
        self.work_dir = work_dir
        self.run_dir = work_dir / "runs" / job.job.id / party
        work_dir.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(work_dir / "audit.db", party=party, signing_key=identity.signing_key)
        self.files = RunFiles(
            self.run_dir,
            job_id=job.job.id,
            party=party,
            job_type=job.job.type,
            label_party=job.job.label_party,
            parties=sorted(job.parties),
            total_rounds=total_rounds(job),
        )
        self.metrics: dict[str, float] = {}
        self._phase, self._phase_start = "starting", time.perf_counter()
        self.fingerprints: dict[str, str] = {}
        self.epsilon: float | None = None
        self._rounds = RoundLog(
            job,
            party=party,
            peers=self.peers,
            channel=channel,
            audit=self.audit,
            files=self.files,
            status=self._status,
            metrics=self.metrics,
            epsilon=lambda: self.epsilon,
        )

    # -- job lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        jid = self.job.job.id
        record_job_started(
            self.audit,
            job_id=jid,
            job_type=self.job.job.type,
            actor=self.party,
            digest=self.job.digest,
            code_version=code_version(),
        )
        record_participants(
            self.audit,
            job_id=jid,
            participants=roles(self.job),
            actor=self.party,
            identities={p: self.identity.participant(p) for p in sorted(self.job.parties)},
        )
        if self.job.model is not None:
            record_hyperparameters(
                self.audit,
                job_id=jid,
                hyperparameters={
                    "model": plain(self.job.model_table),
                    "resolved": plain(self.job.model),
                },
                actor=self.party,
            )

    def phase(self, name: str) -> None:
        """Enter phase ``name``; the event carries how long the previous phase took."""
        now = time.perf_counter()
        seconds = None if self._phase == "starting" else now - self._phase_start
        self._phase, self._phase_start = name, now
        if name == "train":  # round 1's traffic starts here, not with the PSI before it
            self._rounds.start()
        self.files.event("phase", phase=name, seconds=seconds)
        self._status(phase=name)

    def data(self, dataset: str, *, sha256: str, rows: int, columns: Sequence[str]) -> None:
        self.fingerprints[dataset] = sha256
        record_data_fingerprint(
            self.audit,
            job_id=self.job.job.id,
            dataset=dataset,
            sha256=sha256,
            rows=rows,
            columns=list(columns),
            actor=self.party,
        )

    def psi(self, *, input_rows: int, intersection_size: int, dataset: str = "data") -> None:
        record_psi_result(
            self.audit,
            job_id=self.job.job.id,
            own_size=input_rows,
            intersection_size=intersection_size,
            protocol="ecdh-x25519" if dataset == "data" else f"ecdh-x25519 ({dataset})",
            actor=self.party,
        )
        if dataset == "data":  # the run files' psi event is the training rows' alignment
            self.files.event("psi", intersection_size=intersection_size, input_rows=input_rows)

    def crypto(self, *, scheme: str, key_bits: int | None, purpose: str) -> None:
        record_crypto(
            self.audit,
            job_id=self.job.job.id,
            scheme=scheme,
            key_bits=int(key_bits or 0),
            actor=self.party,
            purpose=purpose,
        )

    def privacy(self, privacy: Mapping[str, Any]) -> None:
        """DP parameters and epsilon spent (from the result's ``privacy``), and leak AUC events."""
        jid = self.job.job.id
        params = {
            k: plain(v)
            for k, v in privacy.items()
            if not isinstance(v, list | tuple) and not k.startswith("leak_auc")
        }
        epsilon = number(privacy.get("epsilon", privacy.get("label_dp_epsilon")))
        delta = number(privacy.get("delta"))
        if epsilon is not None:
            self.audit.append(EventKind.DP_PARAMETERS, {"job_id": jid, **params}, actor=self.party)
            record_epsilon_spent(
                self.audit,
                job_id=jid,
                epsilon=epsilon,
                delta=delta if delta is not None else 0.0,
                round=self.rounds,
                actor=self.party,
            )
            self._status(epsilon=epsilon, delta=delta if delta is not None else 0.0)
        norm, direction = (
            number(privacy.get("leak_auc_norm")),
            number(privacy.get("leak_auc_direction")),
        )
        if norm is not None and direction is not None:
            self.files.event("privacy", leak_auc_norm=norm, leak_auc_direction=direction)

    def data_version(self) -> str:
        """Hex SHA-256 over the job's data fingerprints (``dataset=sha256`` lines, sorted)."""
        lines = "".join(f"{k}={v}\n" for k, v in sorted(self.fingerprints.items()))
        return hashlib.sha256(lines.encode("utf-8")).hexdigest()

    def head_exchange_failed(self, error: BaseException) -> str:
        """Log and audit a failed end-of-job head exchange; return the one-line message."""
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        logger.warning("job %s: exchanging audit heads failed: %s", self.job.job.id, message)
        self.audit.append(
            EventKind.HEAD_EXCHANGE_FAILED,
            {"job_id": self.job.job.id, "error": message},
            actor=self.party,
        )
        self.files.event("alert", alert="head_exchange", message=message)
        return message

    def privacy_spent(self, *, epsilon: float, delta: float) -> None:
        """A privacy cost paid up front (label DP perturbs the labels once, before training):
        shown in ``status.json`` and carried by every round event from now on."""
        self.epsilon = epsilon
        self._status(epsilon=epsilon, delta=delta)

    def model(self, *, name: str, version: str, stage: str) -> None:
        self.files.event("model", name=name, version=version, stage=stage)

    def finished(self, metrics: Mapping[str, float]) -> None:
        """The job's last chain record (before the heads are exchanged)."""
        self.metrics.update({k: float(v) for k, v in metrics.items()})
        record_job_finished(
            self.audit,
            job_id=self.job.job.id,
            status="ok",
            actor=self.party,
            metrics={k: v for k, v in self.metrics.items() if math.isfinite(v)},
        )

    def done(self, result: Mapping[str, Any]) -> None:
        """Write ``result.json`` and mark the run done."""
        self.files.result(result)
        self.phase("done")
        self._status(metrics=self.metrics)

    def failed(self, error: BaseException) -> None:
        """Mark the run failed: status, event and an audit record carry the one-line error."""
        message = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        logger.error("job %s party %s failed: %s", self.job.job.id, self.party, message)
        try:
            record_job_finished(
                self.audit,
                job_id=self.job.job.id,
                status="failed",
                actor=self.party,
                metrics={k: v for k, v in self.metrics.items() if math.isfinite(v)},
                error=message,
            )
        finally:
            self.phase("failed")
            self._status(error=message)

    def close(self) -> None:
        self.files.close()
        self.audit.close()

    # -- rounds (vfl/jobs/_rounds.py) -------------------------------------------------------

    @property
    def rounds(self) -> int:
        """Rounds recorded so far."""
        return self._rounds.count

    @property
    def monitor(self) -> Monitor | None:
        return self._rounds.monitor

    def expected_peers(self) -> list[str]:
        """Who this party hears from every round (:meth:`RoundLog.expected_peers`)."""
        return self._rounds.expected_peers()

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
        """One finished epoch / round: event line, status, audit record, monitor alerts.

        ``crypto_seconds`` defaults to the calling thread's time in crypto calls during the last
        ``seconds`` (:func:`crypto.timing.thread_elapsed_since`): call this from the job's thread.
        ``contributions`` (``{party: figures}``, the fedavg aggregator's) replace the figures a
        vertical party observes itself (bytes and time per party, see
        :func:`~vfl.jobs._rounds.observed_contributions`).
        """
        self._rounds.record(
            metrics=metrics,
            seconds=seconds,
            expected=expected,
            responded=responded,
            epsilon=epsilon,
            epsilon_round=epsilon_round,
            delta=delta,
            crypto_seconds=crypto_seconds,
            contributions=contributions,
        )

    def model_contributions(self, norms: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """End of a hetero LR job: each party's weight norm and share (:class:`RoundLog`)."""
        return self._rounds.model_contributions(norms)

    def _status(self, **fields: Any) -> None:
        traffic = self.channel.traffic()
        latency = self.channel.latency_ms()
        peers = {
            p: {**(traffic.get(p) or PeerTraffic()).to_dict(), "latency_ms": latency.get(p)}
            for p in self.peers
        }
        self.files.update(
            bytes_sent=sum(t.bytes_sent for t in traffic.values()),
            bytes_received=sum(t.bytes_received for t in traffic.values()),
            peers=jsonable(peers),
            **fields,
        )
