"""One secure-aggregation round over a :class:`~protocols.channel.Channel`: both sides.

The message steps of Bonawitz et al. (CCS 2017, Fig. 4, without the consistency check of the
actively secure variant); the math is :mod:`vfl.horizontal._secagg`. Each client signs its key
advertisement with its federation key (:meth:`~protocols.channel.Channel.attest`) and checks
every entry of the roster the aggregator relays, so the aggregator cannot substitute keys.
``U1``: clients that advertised keys; ``U2``: those whose shares were forwarded (they mask
against each other); ``U3``: those whose masked input arrived. The threshold is
``t = max(2, floor(|U1| / 2) + 1)``: a strict majority, so two disjoint groups of survivors can
never both reach it, and at least two inputs are always summed. A round unmasks when
``|U3| >= t`` and at least ``t`` survivors reveal; otherwise it fails with a reason and no sum.

Client::   task -> advertise -> roster -> shares -> inbox -> (train) -> masked update
           -> unmask -> reveal
Aggregator: the mirror image; every step message goes to every client that got the task, so a
client left out learns it and returns to waiting for the next task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crypto.random import RandomSource, resolve
from protocols.channel import Channel
from protocols.errors import ChannelTimeout, PeerDown, ProtocolError
from vfl.compression import payload_nbytes
from vfl.horizontal._messages import (
    TOPIC_SECAGG_ADVERTISE,
    TOPIC_SECAGG_INBOX,
    TOPIC_SECAGG_REVEAL,
    TOPIC_SECAGG_ROSTER,
    TOPIC_SECAGG_SHARES,
    TOPIC_SECAGG_UNMASK,
    TOPIC_UPDATE,
    ClientUpdate,
    SecAggAdvertise,
    SecAggInbox,
    SecAggReveal,
    SecAggRoster,
    SecAggShares,
    SecAggUnmask,
    TrainTask,
)
from vfl.horizontal._secagg import (
    RoundSecrets,
    SecAggError,
    advertisement_statement,
    commit_seed,
    int_to_seed,
    key_from_seed,
    mask_input,
    open_share,
    round_context,
    seal_share,
    seed_to_int,
    unmask_total,
    verify_rebuilt,
)
from vfl.horizontal._shamir import PRIME, SHARE_BYTES, ShamirError, reconstruct, split
from vfl.privacy import clip_l2

__all__ = ["threshold_for", "client_secure_round", "SecureRound", "aggregate_secure_round"]

_log = logging.getLogger("vfl.horizontal")
Clock = Callable[[], float]


def threshold_for(n: int) -> int:
    """``t = max(2, floor(n / 2) + 1)``: a strict majority of the round's ``n`` participants."""
    return max(2, n // 2 + 1)


def _xs(names: Sequence[str]) -> dict[str, int]:
    """Shamir points: the ``i``-th name of the sorted roster gets ``x = i + 1`` (both sides use
    the full roster as sent, never a subset shrunk by later drops)."""
    return {n: i + 1 for i, n in enumerate(sorted(names))}


def _statement(round: int, client: str, share: bytes, mask: bytes, commitment: bytes) -> bytes:
    return advertisement_statement(round=round, client=client, share_public=share,
                                   mask_public=mask, commitment=commitment)  # fmt: skip


def _entry(roster: SecAggRoster, name: str) -> tuple[bytes, bytes, bytes]:
    return roster.share_publics[name], roster.mask_publics[name], roster.commitments[name]


def _forged_entries(channel: Channel, roster: SecAggRoster, round: int) -> list[str]:
    """The roster's entries that are not their client's signed advertisement of this round
    (all of them if the roster's maps do not list the same clients)."""
    names = sorted(roster.share_publics)
    if (
        not set(names)
        == set(roster.mask_publics)
        == set(roster.commitments)
        == set(roster.signatures)
    ):
        return names
    return [n for n in names if not channel.check_attestation(
        n, _statement(round, n, *_entry(roster, n)), roster.signatures[n])]  # fmt: skip


def _well_signed(channel: Channel, name: str, ad: SecAggAdvertise, round: int) -> bool:
    """Whether ``ad`` holds 32-byte keys and commitment and ``name``'s signature over them."""
    keys = (ad.share_public, ad.mask_public, ad.self_commitment)
    if not all(isinstance(k, bytes) and len(k) == 32 for k in keys):
        return False
    return channel.check_attestation(name, _statement(round, name, *keys), ad.signature)


def _recv(
    channel: Channel, peer: str, topic: str, kind: type[Any], round: int, timeout: float
) -> Any:
    msg = channel.recv(peer, topic, timeout=timeout)
    while isinstance(msg, kind) and msg.round < round:  # a left-over of an abandoned round
        msg = channel.recv(peer, topic, timeout=timeout)
    if not isinstance(msg, kind) or msg.round != round:
        raise SecAggError(f"expected {kind.__name__} for round {round} on {topic}")
    return msg


def client_secure_round(
    channel: Channel,
    task: TrainTask,
    train: Callable[[], ClientUpdate],
    *,
    aggregator: str,
    timeout: float,
    rng: RandomSource | None = None,
) -> bool:
    """The client's side of one secure round; ``False`` if the aggregator left it out."""
    me, r = channel.party, task.round
    source = resolve(rng)
    secrets = RoundSecrets.generate(source)
    mine = (secrets.share_key.public_bytes(), secrets.mask_key.public_bytes(),
            commit_seed(secrets.self_seed))  # fmt: skip
    signature = channel.attest(_statement(r, me, *mine))
    channel.send(aggregator, TOPIC_SECAGG_ADVERTISE, SecAggAdvertise(r, *mine, signature), round=r)
    roster: SecAggRoster = _recv(channel, aggregator, TOPIC_SECAGG_ROSTER, SecAggRoster, r, timeout)
    names = sorted(roster.share_publics)
    if me not in names or roster.threshold != threshold_for(len(names)):
        return False
    forged = _forged_entries(channel, roster, r)
    if forged or _entry(roster, me) != mine:
        _log.warning("%s: round %d: roster refused: keys of %s not signed by their owner", me, r,
                     ", ".join(forged or [me]))  # fmt: skip
        return False
    ctx = round_context(job=roster.job, round=r, nonce=roster.nonce)
    xs = _xs(names)
    mask_sh = split(seed_to_int(secrets.mask_seed), threshold=roster.threshold, xs=xs.values(),
                    rng=source)  # fmt: skip
    self_sh = split(seed_to_int(secrets.self_seed), threshold=roster.threshold, xs=xs.values(),
                    rng=source)  # fmt: skip
    sealed = {
        v: seal_share(
            secrets.share_key,
            roster.share_publics[v],
            context=ctx,
            sender=me,
            recipient=v,
            mask_share=mask_sh[xs[v]],
            self_share=self_sh[xs[v]],
            rng=source,
        )  # fmt: skip
        for v in names
        if v != me
    }
    channel.send(aggregator, TOPIC_SECAGG_SHARES, SecAggShares(r, sealed), round=r)
    inbox: SecAggInbox = _recv(channel, aggregator, TOPIC_SECAGG_INBOX, SecAggInbox, r, timeout)
    u2 = sorted(inbox.participants)
    if me not in u2 or not set(u2) <= set(names) or len(u2) < roster.threshold:
        return False
    held: dict[str, tuple[int, int]] = {me: (mask_sh[xs[me]], self_sh[xs[me]])}
    refused: list[str] = []
    for v in u2:
        if v == me:
            continue
        try:
            held[v] = open_share(secrets.share_key, roster.share_publics[v], context=ctx,
                                 sender=v, recipient=me, sealed=inbox.sealed.get(v, b""))  # fmt: skip
        except SecAggError as exc:
            _log.warning("%s: round %d: %s", me, r, exc)
            refused.append(v)
    update = train()
    if task.clip_norm > 0:  # central DP: every client's clipped update counts once
        weighted, _ = clip_l2(np.asarray(update.delta, dtype=np.float64), clip_norm=task.clip_norm)
    else:
        weighted = update.num_samples * np.asarray(update.delta, dtype=np.float64)
    masked = mask_input(weighted, me=me, secrets=secrets,
                        peers={v: roster.mask_publics[v] for v in u2}, context=ctx,
                        step=task.secure_step, rng=np.random.default_rng(),
                        count=len(names))  # fmt: skip
    channel.send(aggregator, TOPIC_UPDATE, ClientUpdate(r, masked, update.num_samples), round=r)
    unmask: SecAggUnmask = _recv(channel, aggregator, TOPIC_SECAGG_UNMASK, SecAggUnmask, r, timeout)
    survivors, dropped = set(unmask.survivors), set(unmask.dropped)
    if me not in survivors:
        return True
    if survivors & dropped or survivors | dropped != set(u2) or len(survivors) < roster.threshold:
        # Answering could reveal both shares of one client: refuse (Bonawitz et al., Fig. 4).
        _log.warning("%s: round %d: inconsistent unmask request refused", me, r)
        return True
    element = SHARE_BYTES
    reveal = SecAggReveal(
        r,
        {u: held[u][1].to_bytes(element, "big") for u in sorted(survivors) if u in held},
        {v: held[v][0].to_bytes(element, "big") for v in sorted(dropped) if v in held},
        refused,
    )
    channel.send(aggregator, TOPIC_SECAGG_REVEAL, reveal, round=r)
    return True


@dataclass
class SecureRound:
    """What the aggregator got out of one secure round."""

    total: np.ndarray | None = None
    """``sum_{u in U3} n_u delta_u`` (None when the round could not be unmasked)."""
    weight: int = 0
    survivors: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    failure: str = ""
    bytes_up: int = 0
    bytes_down: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)
    """Each survivor's plain ``num_samples`` (sent in clear beside its masked update)."""


class _Step:
    """Send to / receive from clients, counting payload bytes and recording who failed."""

    def __init__(self, channel: Channel, out: SecureRound, r: int, now: Clock) -> None:
        self.channel, self.out, self.round, self.now = channel, out, r, now

    def send(self, names: Sequence[str], topic: str, payload: Any) -> list[str]:
        size, reached = payload_nbytes(payload), []
        for n in names:
            try:
                self.channel.send(n, topic, payload, round=self.round)
            except ProtocolError as exc:  # PeerDown included
                self.out.dropped.setdefault(n, f"{topic}: {type(exc).__name__}")
                continue
            self.out.bytes_down += size
            reached.append(n)
        return reached

    def send_each(self, payloads: Mapping[str, Any], topic: str) -> None:
        for n, p in payloads.items():
            self.send([n], topic, p)

    def _next(self, name: str, topic: str, deadline: float) -> Any:
        """The next message of this round from ``name`` (older rounds' are discarded)."""
        while True:
            try:
                msg = self.channel.recv(name, topic, timeout=max(0.0, deadline - self.now()))
            except ChannelTimeout:
                self.out.dropped.setdefault(name, f"{topic}: deadline")
                return None
            except PeerDown:
                self.out.dropped.setdefault(name, f"{topic}: peer down")
                return None
            self.out.bytes_up += payload_nbytes(msg)
            late = getattr(msg, "round", self.round)
            if not isinstance(late, int) or late >= self.round:
                return msg
            self.out.events.append({"event": "late_message", "client": name, "topic": topic})

    def gather(
        self, names: Sequence[str], topic: str, kind: type[Any], deadline: float,
        enough: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        got: dict[str, Any] = {}
        for n in names:
            if enough is not None and enough(got):
                break
            msg = self._next(n, topic, deadline)
            if msg is None:
                continue
            if not isinstance(msg, kind) or msg.round != self.round:
                self.out.rejected[n] = f"malformed {topic}: {type(msg).__name__}"
                continue
            got[n] = msg
        return got


def _share_int(raw: object) -> int | None:
    if not isinstance(raw, bytes) or len(raw) != SHARE_BYTES:
        return None
    value = int.from_bytes(raw, "big")
    return value if value < PRIME else None


def aggregate_secure_round(
    channel: Channel,
    live: Sequence[str],
    *,
    round: int,
    width: int,
    deadline: float,
    reveal_timeout: float,
    job: str,
    clipped: bool = False,
    step: float = 0.0,
    rng: RandomSource | None = None,
    now: Clock = time.monotonic,
) -> SecureRound:
    """The aggregator's side, after the round's task went to ``live``: returns the unmasked sum
    of the survivors' weighted updates (``clipped``: of their clipped, unweighted updates, with
    ``weight`` the number of survivors), or the reason it could not be formed. ``step > 0``: the
    inputs are in the 8-bit ring with that step (``q8`` under secure aggregation)."""
    out = SecureRound()
    io = _Step(channel, out, round, now)
    ads = io.gather(live, TOPIC_SECAGG_ADVERTISE, SecAggAdvertise, deadline)
    for n, a in ads.items():
        if not _well_signed(channel, n, a, round):
            out.rejected[n] = "advertisement is malformed or not signed by its client"
    u1 = sorted(n for n in ads if n not in out.rejected)
    t = threshold_for(len(u1))
    nonce = resolve(rng).random_bytes(16)
    ctx = round_context(job=job, round=round, nonce=nonce)
    if len(u1) < t:
        io.send(live, TOPIC_SECAGG_ROSTER, SecAggRoster(round, job, nonce, t, {}, {}, {}, {}))
        out.failure = f"{len(u1)} clients advertised keys, threshold {t}"
        return out
    roster = SecAggRoster(round, job, nonce, t, {n: ads[n].share_public for n in u1},
                          {n: ads[n].mask_public for n in u1},
                          {n: ads[n].self_commitment for n in u1},
                          {n: ads[n].signature for n in u1})  # fmt: skip
    u1 = [n for n in io.send(live, TOPIC_SECAGG_ROSTER, roster) if n in u1]
    shares = io.gather(u1, TOPIC_SECAGG_SHARES, SecAggShares, deadline)
    u2 = sorted(n for n, s in shares.items() if set(s.sealed) == set(roster.share_publics) - {n})
    ok = len(u2) >= t
    io.send_each({v: SecAggInbox(round, u2 if ok else [],
                                   {u: shares[u].sealed[v] for u in u2 if u != v and ok})
                    for v in u1}, TOPIC_SECAGG_INBOX)  # fmt: skip
    if not ok:
        out.failure = f"{len(u2)} clients shared their keys, threshold {t}"
        return out
    updates = io.gather(u2, TOPIC_UPDATE, ClientUpdate, deadline)
    ring = np.dtype(np.uint8 if step > 0 else np.uint64)
    for n, u in updates.items():
        if not (isinstance(u.delta, np.ndarray) and u.delta.dtype == ring
                and u.delta.shape == (width,) and type(u.num_samples) is int
                and u.num_samples >= 1):  # fmt: skip
            out.rejected[n] = f"masked update must be a {ring} vector of the model's size"
    u3 = sorted(n for n in updates if n not in out.rejected)
    dropped = sorted(set(u2) - set(u3))
    ok = len(u3) >= t
    io.send(u2, TOPIC_SECAGG_UNMASK, SecAggUnmask(round, u3 if ok else [], dropped if ok else []))
    if not ok:
        out.failure = f"{len(u3)} masked updates arrived, threshold {t}"
        return out
    # Shamir points from the roster every client received, not from who it reached: a client
    # that dies after advertising keeps its index, so survivors' shares line up.
    xs = _xs(list(roster.share_publics))

    def points(got: Mapping[str, SecAggReveal], kind: str, owner: str) -> dict[int, int]:
        out_pts: dict[int, int] = {}
        for name, rv in got.items():
            value = _share_int(getattr(rv, kind).get(owner))
            if value is not None:
                out_pts[xs[name]] = value
        return out_pts

    def enough(got: dict[str, Any]) -> bool:
        """Every secret to rebuild has ``t`` shares (stop waiting for the slowest survivors)."""
        return all(len(points(got, "self_shares", u)) >= t for u in u3) and all(
            len(points(got, "mask_shares", v)) >= t for v in dropped
        )

    reveals = io.gather(u3, TOPIC_SECAGG_REVEAL, SecAggReveal, now() + reveal_timeout, enough)
    for n, rv in reveals.items():
        if rv.refused:
            out.events.append({"event": "share_refused", "client": n, "senders": list(rv.refused)})
    try:
        self_seeds: dict[str, bytes] = {}
        for u in u3:
            self_seeds[u] = int_to_seed(reconstruct(points(reveals, "self_shares", u), threshold=t))
            verify_rebuilt(self_seed=self_seeds[u], commitment=ads[u].self_commitment)
        dropped_keys = {}
        for v in dropped:
            seed = int_to_seed(reconstruct(points(reveals, "mask_shares", v), threshold=t))
            verify_rebuilt(mask_seed=seed, mask_public=ads[v].mask_public)
            dropped_keys[v] = key_from_seed(seed)
    except (ShamirError, SecAggError) as exc:
        out.failure = f"unmasking failed: {exc}"
        return out
    out.total = unmask_total(
        {u: updates[u].delta for u in u3}, self_seeds=self_seeds, dropped_keys=dropped_keys,
        mask_publics={u: ads[u].mask_public for u in u3}, context=ctx, step=step,
    )  # fmt: skip
    out.samples = {u: int(updates[u].num_samples) for u in u3}
    out.weight = len(u3) if clipped else sum(out.samples.values())
    out.survivors = u3
    return out
