"""The aggregator's state and decisions, without I/O: sampling, validation, aggregation.

:class:`FedServer` is driven by the transport loop in :mod:`vfl.horizontal._aggregator`; each
round it says whom to sample and what to send, then turns the updates that arrived in time into
the next global parameters and a :class:`RoundRecord`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfl.errors import ConfigError
from vfl.horizontal._aggregators import Aggregator, make_aggregator
from vfl.horizontal._config import FedConfig
from vfl.horizontal._dp_accounting import JobPrivacy
from vfl.horizontal._messages import ClientUpdate, Finish, TrainTask
from vfl.horizontal._validation import Reputation, Verdict, validate_round
from vfl.privacy import central_dp

__all__ = ["FedServer", "RoundRecord", "contributions", "staleness_weight"]

_log = logging.getLogger("vfl.horizontal")


def staleness_weight(staleness: int, *, exponent: float) -> float:
    """FedBuff's staleness discount (Nguyen et al., AISTATS 2022, Sec. 5): ``1/(1 + tau)^a``.

    >>> staleness_weight(3, exponent=0.5)
    0.5
    """
    return float((1.0 + max(0, staleness)) ** -exponent)


@dataclass(frozen=True)
class RoundRecord:
    """What happened in one round (one model version in async mode)."""

    round: int
    sampled: tuple[str, ...]
    accepted: tuple[str, ...]
    rejected: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    late: tuple[str, ...] = ()
    flagged: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    skipped: bool = False
    seconds: float = 0.0
    bytes_down: int = 0
    bytes_up: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    privacy: dict[str, float] = field(default_factory=dict)
    """With DP: ``epsilon_round`` (this round alone), ``epsilon`` (cumulative), ``delta``."""
    contributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per client, what it contributed (:func:`contributions`; secure aggregation: only
    ``accepted``, ``dropped`` and ``samples``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "sampled": list(self.sampled),
            "accepted": list(self.accepted),
            "rejected": dict(self.rejected),
            "dropped": dict(self.dropped),
            "late": list(self.late),
            "flagged": list(self.flagged),
            "excluded": list(self.excluded),
            "skipped": self.skipped,
            "seconds": self.seconds,
            "bytes_down": self.bytes_down,
            "bytes_up": self.bytes_up,
            "metrics": dict(self.metrics),
            "privacy": dict(self.privacy),
            "contributions": {k: dict(v) for k, v in self.contributions.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RoundRecord:
        return cls(
            round=int(d["round"]),
            sampled=tuple(d["sampled"]),
            accepted=tuple(d["accepted"]),
            rejected=dict(d["rejected"]),
            dropped=dict(d["dropped"]),
            late=tuple(d["late"]),
            flagged=tuple(d["flagged"]),
            excluded=tuple(d["excluded"]),
            skipped=bool(d["skipped"]),
            seconds=float(d["seconds"]),
            bytes_down=int(d["bytes_down"]),
            bytes_up=int(d["bytes_up"]),
            metrics={str(k): float(v) for k, v in d["metrics"].items()},
            privacy={str(k): float(v) for k, v in d.get("privacy", {}).items()},
            contributions={str(k): dict(v) for k, v in d.get("contributions", {}).items()},
        )


def _norm(delta: Any) -> float | None:
    try:
        value = float(np.linalg.norm(np.asarray(delta, dtype=np.float64).reshape(-1)))
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def contributions(
    updates: Mapping[str, ClientUpdate],
    *,
    sampled: Sequence[str],
    accepted: Sequence[str],
    rejected: Mapping[str, str],
    dropped: Mapping[str, str],
    aggregate: np.ndarray | None,
    reputation: Reputation,
) -> dict[str, dict[str, Any]]:
    """What each client contributed to a plain (not secure) round, as the aggregator saw it.

    Per client: ``samples`` (its ``num_samples``), ``update_norm`` ``||d_i||``, ``cosine``
    ``<d_i, a> / (||d_i|| ||a||)`` with the round's aggregate step ``a`` (``None`` when the round
    was skipped or a norm is 0), ``accepted``, ``reason`` (when rejected), ``dropped`` and its
    ``reputation`` after the round.
    """
    agg_norm = _norm(aggregate) if aggregate is not None else None
    out: dict[str, dict[str, Any]] = {}
    for name in sorted({*sampled, *updates}):
        entry: dict[str, Any] = {
            "accepted": name in accepted,
            "dropped": name in dropped and name not in updates,
            "reputation": reputation.score(name),
        }
        update = updates.get(name)
        if update is not None:
            norm = _norm(update.delta)
            cosine = None
            if norm and agg_norm and aggregate is not None:
                flat = np.asarray(update.delta, dtype=np.float64).reshape(-1)
                if flat.shape == aggregate.shape:
                    cosine = float(flat @ aggregate) / (norm * agg_norm)
            n = update.num_samples
            entry.update(
                samples=n if isinstance(n, int) and not isinstance(n, bool) else None,
                update_norm=norm,
                cosine=cosine,
            )
        if name in rejected:
            entry["reason"] = rejected[name]
        out[name] = entry
    return out


class FedServer:
    """Global parameters, aggregation strategy, reputations and history of one horizontal job."""

    def __init__(
        self, config: FedConfig, initial_params: np.ndarray, *, clients: Sequence[str]
    ) -> None:
        if not clients or len(set(clients)) != len(clients):
            raise ConfigError("a horizontal job needs at least one client, names distinct")
        if initial_params.ndim != 1 or not np.issubdtype(initial_params.dtype, np.floating):
            raise ConfigError("initial parameters must be one flat float array")
        self.config = config
        self.clients = tuple(sorted(clients))
        self.params = initial_params.copy()
        self.round = 0
        self.aggregator: Aggregator = make_aggregator(config.aggregator, config.aggregator_options)
        self.reputation = Reputation()
        self.history: list[RoundRecord] = []
        self.events: list[dict[str, Any]] = []
        self._last_seen: dict[str, int] = {}
        self.last_updates: dict[str, np.ndarray] = {}
        """The accepted updates of the last round (what clustering by similarity looks at)."""
        self.secure_scale = 0.0
        """Largest ``|coordinate|`` of the last unmasked secure sum (sets the ``q8`` ring step)."""
        self.privacy: JobPrivacy | None = None
        """With ``config.dp``: the per-client accountant, budget policy and central DP."""
        if config.dp is not None:
            per_round = config.clients_per_round or len(self.clients)
            self.privacy = JobPrivacy(
                config.dp, clients=self.clients, rounds=config.rounds,
                local_epochs=config.local.epochs, expected_per_round=min(per_round, len(clients)),
            )  # fmt: skip

    @property
    def done(self) -> bool:
        """All rounds ran, or (with DP) the next round would overspend the privacy budget."""
        if self.round >= self.config.rounds:
            return True
        if self.privacy is None or self.privacy.stop_reason is not None:
            return self.privacy is not None
        if self.privacy.should_stop():
            self.event("privacy_budget_stop", reason=self.privacy.stop_reason)
            return True
        return False

    def event(self, kind: str, **fields: Any) -> None:
        """Record (and log) a notable event: a straggler, a dead peer, a rejoin, a rejection."""
        entry = {"round": self.round + 1, "event": kind, **fields}
        self.events.append(entry)
        _log.info("round %d: %s %s", self.round + 1, kind, fields)

    def sample(self) -> tuple[list[str], list[str]]:
        """Clients for the next round (seeded by ``(seed, round)``), and those excluded."""
        excluded = [c for c in self.clients if self.reputation.excluded(c)]
        eligible = [c for c in self.clients if c not in excluded]
        k = (
            len(eligible)
            if self.config.clients_per_round is None
            else self.config.clients_per_round
        )
        rng = np.random.default_rng([self.config.seed, self.round + 1])
        picked = rng.choice(len(eligible), size=min(k, len(eligible)), replace=False)
        return sorted(eligible[i] for i in picked), excluded

    def task(self) -> TrainTask:
        s, c = self.config.local, self.config
        central = c.secure_aggregation and self.privacy is not None and self.privacy.central
        return TrainTask(
            self.round + 1, self.params, s.epochs, s.learning_rate, s.batch_size, s.mu, s.l2,
            c.secure_aggregation, c.compression, c.compression_ratio,
            self.privacy.spec.max_grad_norm if central and self.privacy is not None else 0.0,
        )  # fmt: skip

    def finish_message(self) -> Finish:
        s = self.config.local
        lr = self.config.personalise_learning_rate or s.learning_rate
        return Finish(self.params, self.config.personalise_epochs, lr, s.batch_size)

    def note_heard(self, client: str) -> None:
        """A client answered; if it had missed rounds before, record that it rejoined."""
        last = self._last_seen.get(client, 0)
        missed = [r.round for r in self.history if client in r.dropped and r.round > last]
        if missed:
            self.event("rejoined", client=client, missed_rounds=missed)
        self._last_seen[client] = self.round + 1

    def apply(
        self,
        updates: Mapping[str, ClientUpdate],
        *,
        sampled: Sequence[str],
        dropped: Mapping[str, str],
        late: Sequence[str] = (),
        excluded: Sequence[str] = (),
        seconds: float = 0.0,
        bytes_down: int = 0,
        staleness: Mapping[str, int] | None = None,
    ) -> RoundRecord:
        """Validate, aggregate and apply one round's updates; returns the round's record."""
        verdicts = validate_round(
            {n: u.delta for n, u in updates.items()}, self.params, self.config.validation
        )
        for name, u in updates.items():
            n = u.num_samples
            if verdicts[name].accepted and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
                verdicts[name] = Verdict(False, f"num_samples {n!r} is not a positive integer")
        rejected: dict[str, str] = {}
        accepted: dict[str, np.ndarray] = {}
        for name in sorted(verdicts):
            v = verdicts[name]
            if v.accepted:
                self.reputation.accept(name)
                accepted[name] = updates[name].delta
            else:
                score = self.reputation.reject(name)
                rejected[name] = v.reason
                _log.warning("rejected update from %s: %s (reputation %.3f)", name, v.reason, score)
                self.event("rejected", client=name, reason=v.reason, reputation=score)
        self.last_updates = dict(accepted)
        bytes_up = sum(int(np.asarray(u.delta).nbytes) for u in updates.values())
        skipped = len(accepted) < self.config.min_clients
        flagged: tuple[str, ...] = ()
        step: np.ndarray | None = None
        if skipped:
            self.event("skipped", accepted=len(accepted), min_clients=self.config.min_clients)
        else:
            weights = {
                n: updates[n].num_samples
                * self.reputation.score(n)
                * staleness_weight(
                    (staleness or {}).get(n, 0), exponent=self.config.staleness_exponent
                )
                for n in accepted
            }
            if self.privacy is not None and self.privacy.central:
                step = self.config.server_lr * self.privacy.central_aggregate(accepted)
            else:
                agg = self.aggregator.aggregate(accepted, weights)
                flagged = agg.flagged
                step = self.config.server_lr * agg.update
            self.params = (self.params + step).astype(self.params.dtype)
        self.round += 1
        privacy = {} if self.privacy is None else self.privacy.record_round(self.round, sampled)
        contributed = contributions(
            updates, sampled=sampled, accepted=list(accepted), rejected=rejected,
            dropped=dropped, aggregate=None if step is None else np.asarray(step).reshape(-1),
            reputation=self.reputation,
        )  # fmt: skip
        record = RoundRecord(
            round=self.round,
            sampled=tuple(sampled),
            accepted=tuple(sorted(accepted)),
            rejected=rejected,
            dropped=dict(dropped),
            late=tuple(late),
            flagged=flagged,
            excluded=tuple(excluded),
            skipped=skipped,
            seconds=seconds,
            bytes_down=bytes_down,
            bytes_up=bytes_up,
            privacy=privacy,
            contributions=contributed,
        )
        self.history.append(record)
        return record

    def apply_secure(
        self,
        total: np.ndarray | None,
        *,
        weight: float,
        survivors: Sequence[str],
        sampled: Sequence[str],
        dropped: Mapping[str, str],
        rejected: Mapping[str, str] | None = None,
        failure: str = "",
        late: Sequence[str] = (),
        excluded: Sequence[str] = (),
        seconds: float = 0.0,
        bytes_down: int = 0,
        bytes_up: int = 0,
        samples: Mapping[str, int] | None = None,
    ) -> RoundRecord:
        """Apply a secure round: ``w += server_lr * total / weight`` with ``total`` the unmasked
        ``sum_u n_u delta_u`` over the ``survivors`` and ``weight = sum_u n_u``
        (:mod:`vfl.horizontal._secagg_round`). ``total=None`` (not unmaskable; ``failure`` says
        why) or fewer than ``min_clients`` survivors skip the round, model unchanged. With central
        DP the clients clipped their updates and ``total`` is their plain sum: it is noised once,
        here, after unmasking (:func:`vfl.privacy.central_dp`, divided by the expected number of
        clients per round). The round's contributions hold only what secure aggregation does not
        hide: per client ``accepted``, ``dropped`` and ``samples`` (its plain ``num_samples``,
        when the caller passes ``samples``)."""
        malformed = dict(rejected or {})
        for name, reason in malformed.items():
            self.event("rejected", client=name, reason=reason,
                       reputation=self.reputation.reject(name))  # fmt: skip
        participants = sorted(survivors)
        skipped = total is None or len(participants) < self.config.min_clients or weight <= 0
        if total is None or skipped:
            self.event("secure_round_failed",
                       reason=failure or f"{len(participants)} survivors < min_clients")  # fmt: skip
        else:
            if self.privacy is not None and self.privacy.central:
                p = self.privacy
                mean = central_dp(
                    total, clip_norm=p.spec.max_grad_norm,
                    noise_multiplier=p.plan.noise_multiplier,
                    divide_by=float(p.expected_per_round), secure=p.spec.secure_noise,
                )  # fmt: skip
            else:
                mean = total / float(weight)
            step = self.config.server_lr * mean
            self.params = (self.params + step).astype(self.params.dtype)
            for name in participants:
                self.reputation.accept(name)
                self.note_heard(name)
        self.last_updates = {}
        self.round += 1
        privacy = {} if self.privacy is None else self.privacy.record_round(self.round, sampled)
        kept = set() if skipped else set(participants)
        contributed = {
            name: {
                "accepted": name in kept,
                "dropped": name in dropped,
                "samples": (samples or {}).get(name),
            }
            for name in sorted({*sampled, *participants})
        }
        record = RoundRecord(
            round=self.round,
            sampled=tuple(sampled),
            accepted=() if skipped else tuple(sorted(participants)),
            rejected=dict(malformed),
            dropped=dict(dropped),
            late=tuple(late),
            excluded=tuple(excluded),
            skipped=skipped,
            seconds=seconds,
            bytes_down=bytes_down,
            bytes_up=bytes_up,
            privacy=privacy,
            contributions=contributed,
        )
        self.history.append(record)
        return record
