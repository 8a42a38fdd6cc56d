"""One job at one party, as the audit trail, the run files and the monitor see it.

:class:`JobTracker` is what :func:`vfl.jobs.run_job` reports to: every fact goes to the party's
audit log (``WORK_DIR/audit.db``, hash-chained and signed), to the live run files
(``status.json`` / ``events.jsonl``) and, for training rounds, to a :class:`vfl.governance.Monitor`
whose alerts (plateau, dropouts, silent party, slow round) become events, audit records and
warnings. Bytes per peer come from the job's :class:`MeteredChannel`.

Per round it also records the share of time in crypto (``crypto_seconds``: the wall time the
job's thread spent in the public Paillier / CKKS calls during the round, from
:mod:`crypto.timing`), the heartbeat latency to each peer when the transport has a heartbeat
monitor (gRPC), and one ``contribution`` event per party with what that party contributed
(docs/governance.md, "Contribution log").
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from crypto import timing
from vfl.governance import (
    AlertRules,
    AuditLog,
    EventKind,
    Monitor,
    RoundRecord,
    record_crypto,
    record_data_fingerprint,
    record_epsilon_spent,
    record_hyperparameters,
    record_job_finished,
    record_job_started,
    record_participants,
    record_psi_result,
    record_round_metrics,
)
from vfl.jobs._metered import MeteredChannel, PeerTraffic
from vfl.jobs._provenance import PartyIdentity, code_version
from vfl.jobs._runfiles import RunFiles, jsonable
from vfl.jobs._spec import Job

__all__ = ["JobTracker", "plain", "CONTRIBUTION_EVENT", "weight_shares"]

logger = logging.getLogger("vfl.jobs")

#: Audit event of the per-round (and end-of-job) contribution log.
CONTRIBUTION_EVENT = EventKind.CONTRIBUTION.value

# Metrics the plateau rule may watch, in order of preference: (name, higher is better).
_WATCHED = (
    ("loss", False),
    ("val_logloss", False),
    ("test_logloss", False),
    ("val_auc", True),
    ("test_auc", True),
    ("val_accuracy", True),
    ("accuracy", True),
)


def plain(value: Any) -> Any:
    """A JSON-ready view of a config object: dataclasses to dicts, enums to values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def roles(job: Job) -> dict[str, str]:
    """party -> role in ``job`` (``label`` / ``feature`` / ``aggregator`` / ``client`` / ``psi``)."""
    out = {}
    for name in sorted(job.parties):
        if job.job.type == "fedavg":
            out[name] = "aggregator" if name == job.job.aggregator else "client"
        elif job.job.type == "psi":
            out[name] = "psi"
        else:
            out[name] = "label" if name == job.job.label_party else "feature"
    return out


def weight_shares(norms: Mapping[str, float]) -> dict[str, float]:
    """Each party's share of the model's squared weight norm: ``||w_p||^2 / sum_q ||w_q||^2``.

    The blocks partition the weight vector, so ``||w||^2 = sum_p ||w_p||^2`` and the shares add
    up to 1 (all 0 when every block is 0).
    """
    total = sum(float(v) ** 2 for v in norms.values())
    return {p: (float(v) ** 2 / total if total > 0 else 0.0) for p, v in sorted(norms.items())}


def total_rounds(job: Job) -> int | None:
    """Planned epochs (vertical) or rounds (fedavg), when the ``[model]`` config states them."""
    model = job.model
    for holder in (model, getattr(model, "config", None)):
        for name in ("rounds", "epochs"):
            value = getattr(holder, name, None)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None


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
        self.monitor: Monitor | None = None
        self.rounds = 0
        self.metrics: dict[str, float] = {}
        self._phase, self._phase_start = "starting", time.perf_counter()
        self._last_traffic: dict[str, PeerTraffic] = {}
        self.fingerprints: dict[str, str] = {}
        self.epsilon: float | None = None
        self._round_seconds = 0.0
        self._crypto_seconds = 0.0

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
            self._last_traffic = self.channel.traffic()
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
        epsilon = _number(privacy.get("epsilon", privacy.get("label_dp_epsilon")))
        delta = _number(privacy.get("delta"))
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
            _number(privacy.get("leak_auc_norm")),
            _number(privacy.get("leak_auc_direction")),
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

    # -- rounds -------------------------------------------------------------------------------

    def expected_peers(self) -> list[str]:
        """Who this party hears from every round: the label party hears every feature party, a
        feature party the label party, the aggregator the sampled clients."""
        if (
            self.job.job.type in ("hetero_lr", "split_nn", "secureboost")
            and self.party != self.job.job.label_party
        ):
            return [str(self.job.job.label_party)]
        return list(self.peers)

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
        vertical party observes itself (bytes and time per party, see :meth:`_observed`).
        """
        window = time.perf_counter() - max(0.0, seconds)
        if crypto_seconds is None:
            crypto_seconds = timing.thread_elapsed_since(window)
        self.rounds += 1
        number = self.rounds
        traffic = self.channel.traffic()
        sent = {
            p: t.bytes_sent - self._last_traffic.get(p, PeerTraffic()).bytes_sent
            for p, t in traffic.items()
        }
        received = {
            p: t.bytes_received - self._last_traffic.get(p, PeerTraffic()).bytes_received
            for p, t in traffic.items()
        }
        waited = self.channel.waited_since(window)
        self._last_traffic = traffic
        latency = self.channel.latency_ms()
        expect = list(self.expected_peers() if expected is None else expected)
        heard = (
            [p for p in expect if received.get(p, 0) > 0]
            if responded is None
            else [p for p in responded if p in expect]
        )
        dropped = sorted(set(expect) - set(heard))
        cumulative = self.epsilon if epsilon is None else epsilon
        values = {k: float(v) for k, v in metrics.items() if _number(v) is not None}
        self.metrics.update(values)
        self.files.event(
            "round",
            round=number,
            metrics=values,
            seconds=seconds,
            bytes_sent=sum(sent.values()),
            bytes_received=sum(received.values()),
            participants=sorted({self.party, *heard}),
            dropped=dropped,
            epsilon=cumulative,
            epsilon_round=epsilon_round,
            crypto_seconds=crypto_seconds,
            latency_ms=latency or None,
        )
        if contributions is None and self.job.job.type in ("hetero_lr", "split_nn", "secureboost"):
            contributions = self._observed(
                expect, seconds=seconds, sent=sent, received=received, waited=waited
            )
        if contributions:
            self._contributions(number, contributions)
        self._round_seconds += max(0.0, seconds)
        self._crypto_seconds += max(0.0, crypto_seconds)
        total = self.files.status["total_rounds"]
        status: dict[str, Any] = {
            "round": number,
            "metrics": values,
            "crypto_seconds": self._crypto_seconds,
            "crypto_share": (
                self._crypto_seconds / self._round_seconds if self._round_seconds > 0 else None
            ),
        }
        if isinstance(total, int) and number > total:
            status["total_rounds"] = None
        if epsilon is not None:
            status["epsilon"] = epsilon
        if delta is not None:
            status["delta"] = delta
        self._status(**status)
        record_round_metrics(
            self.audit,
            job_id=self.job.job.id,
            round=number,
            metrics=values,
            actor=self.party,
            payload={"bytes_sent": sent, "bytes_received": received, "dropped": dropped},
        )
        if epsilon is not None:
            record_epsilon_spent(
                self.audit,
                job_id=self.job.job.id,
                epsilon=epsilon,
                delta=_number(self.files.status.get("delta")) or 0.0,
                round=number,
                actor=self.party,
            )
        record = RoundRecord(
            round=number,
            metrics=values,
            seconds=max(0.0, seconds),
            expected=tuple(sorted({self.party, *expect})),
            responded=tuple(sorted({self.party, *heard})),
            bytes_sent=sent,
            encryption_seconds=max(0.0, crypto_seconds or 0.0),
        )
        for alert in self._monitor(values).observe(record):
            self.files.event("alert", alert=str(alert.kind), message=alert.message)

    def _observed(
        self,
        expect: Sequence[str],
        *,
        seconds: float,
        sent: Mapping[str, int],
        received: Mapping[str, int],
        waited: Mapping[str, float],
    ) -> dict[str, dict[str, Any]]:
        """What a vertical party sees each party contribute in a round: itself, the bytes it sent
        and its compute time (the round's ``seconds`` not spent blocked in ``recv``); each
        expected peer, the bytes received from it and the time spent waiting for it (that peer's
        compute plus the network, as seen from here)."""
        role = roles(self.job)
        blocked = sum(waited.values())
        out: dict[str, dict[str, Any]] = {
            self.party: {
                "role": role.get(self.party),
                "bytes_sent": int(sum(sent.values())),
                "compute_seconds": max(0.0, seconds - blocked),
            }
        }
        for peer in expect:
            out[peer] = {
                "role": role.get(peer),
                "bytes_sent": int(received.get(peer, 0)),
                "waited_seconds": max(0.0, waited.get(peer, 0.0)),
            }
        return out

    def _contributions(
        self, number: int | None, contributions: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """One ``contribution`` event per party and one audit record for the round (``number``
        ``None``: the end-of-job summary)."""
        figures = {str(p): jsonable(dict(v)) for p, v in sorted(contributions.items())}
        for party, values in figures.items():
            self.files.event("contribution", round=number, party=party, **values)
        self.audit.append(
            CONTRIBUTION_EVENT,
            {"job_id": self.job.job.id, "round": number, "contributions": figures},
            actor=self.party,
        )

    def model_contributions(self, norms: Mapping[str, float]) -> dict[str, dict[str, float]]:
        """End of a hetero LR job: each party's weight-block norm and its share of the squared
        norm (:func:`weight_shares`), as ``contribution`` events (``round`` null) and an audit
        record; returns ``{party: {"weight_norm", "weight_share"}}``."""
        shares = weight_shares(norms)
        role = roles(self.job)
        out = {p: {"weight_norm": float(norms[p]), "weight_share": shares[p]} for p in shares}
        self._contributions(None, {p: {"role": role.get(p), **v} for p, v in out.items()})
        return out

    def _monitor(self, metrics: Mapping[str, float]) -> Monitor:
        if self.monitor is None:
            watched = next(((m, hi) for m, hi in _WATCHED if m in metrics), ("loss", False))
            section = self.job.monitor
            rules = AlertRules(
                metric=watched[0],
                higher_is_better=watched[1],
                plateau_rounds=section.plateau_rounds,
                min_delta=section.min_delta,
                max_dropout=section.max_dropout,
                silent_rounds=section.silent_rounds,
                round_time_limit=section.round_time_limit,
            )
            self.monitor = Monitor(
                job_id=self.job.job.id, party=self.party, rules=rules, audit_log=self.audit
            )
        return self.monitor

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


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value.item()) if hasattr(value, "item") else None
        except (TypeError, ValueError):
            return None
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
