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
from vfl.horizontal._messages import ClientUpdate, Finish, TrainTask
from vfl.horizontal._secagg import unmask_sum
from vfl.horizontal._validation import Reputation, Verdict, validate_round

__all__ = ["FedServer", "RoundRecord", "staleness_weight"]

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
        )


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
        self.secagg_keys: dict[str, bytes] = {}
        """Clients' X25519 public keys for secure aggregation, as received."""
        self.last_updates: dict[str, np.ndarray] = {}
        """The accepted updates of the last round (what clustering by similarity looks at)."""

    @property
    def done(self) -> bool:
        return self.round >= self.config.rounds

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

    def task(self, peers: Mapping[str, bytes] | None = None) -> TrainTask:
        s = self.config.local
        return TrainTask(
            self.round + 1, self.params, s.epochs, s.learning_rate, s.batch_size, s.mu, s.l2,
            dict(peers or {}),
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
            agg = self.aggregator.aggregate(accepted, weights)
            flagged = agg.flagged
            step = self.config.server_lr * agg.update
            self.params = (self.params + step).astype(self.params.dtype)
        self.round += 1
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
        )
        self.history.append(record)
        return record

    def apply_secure(
        self,
        updates: Mapping[str, ClientUpdate],
        *,
        participants: Sequence[str],
        sampled: Sequence[str],
        dropped: Mapping[str, str],
        late: Sequence[str] = (),
        excluded: Sequence[str] = (),
        seconds: float = 0.0,
        bytes_down: int = 0,
    ) -> RoundRecord:
        """Add the masked updates of a secure round; the masks cancel only if every participant
        answered with a well-formed vector, else the round is skipped (model unchanged)."""
        width = self.params.size
        malformed = {
            n: "masked update must be a uint64 vector of the model's size"
            for n, u in updates.items()
            if not isinstance(u.delta, np.ndarray)
            or u.delta.dtype != np.uint64
            or u.delta.shape != (width,)
            or isinstance(u.num_samples, bool)
            or not isinstance(u.num_samples, int)
            or u.num_samples < 1
        }
        for name, reason in malformed.items():
            self.event("rejected", client=name, reason=reason,
                       reputation=self.reputation.reject(name))  # fmt: skip
        missing = sorted(set(participants) - set(updates))
        skipped = bool(missing or malformed) or len(updates) < self.config.min_clients
        if skipped:
            self.event("secure_round_incomplete", missing=missing, malformed=sorted(malformed))
        else:
            total = unmask_sum({n: updates[n].delta for n in participants})
            weight = float(sum(updates[n].num_samples for n in participants))
            step = self.config.server_lr * total / weight
            self.params = (self.params + step).astype(self.params.dtype)
            for name in participants:
                self.reputation.accept(name)
                self.note_heard(name)
        self.last_updates = {}
        self.round += 1
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
            bytes_up=sum(int(np.asarray(u.delta).nbytes) for u in updates.values()),
        )
        self.history.append(record)
        return record
