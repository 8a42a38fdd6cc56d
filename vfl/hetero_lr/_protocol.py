"""The message steps of hetero LR, one function per step and role (see docs/protocols/hetero_lr.md).

Roles: the label party ``G`` (labels, intercept, key ``pk_G``) and feature parties ``H_1..H_k``
(each with its own key ``pk_j``). Per mini-batch, with d = alpha + beta * sum_j u_j the (class
weighted, linearised) residual that nobody sees in clear:

1. G -> H_j   [[alpha]]_G and, unless beta is a public constant, [[beta]]_G
2. H_j -> G   [[u_j]]_j                       (its own key: G cannot decrypt it)
   H_j -> H_l [[beta * u_j]]_G, re-randomised  (k >= 2 only; G never receives these)
3. H_j -> G   [[X_j^T d + R_j]]_G              (R_j uniform mod n_G, re-randomised with r^n)
4. G -> H_j   [[(beta X_G)^T u_j + S_j]]_j     (S_j uniform mod n_j, re-randomised with r^n)
5. G -> H_j   (X_j^T d + R_j) mod n_G          (exact residues; H_j removes R_j, checks the bound)
6. H_j -> G   ((beta X_G)^T u_j + S_j) mod n_j + Z_j   (Z_j: zero-sum masks between feature parties)

No ciphertext carries a scale or bound on the wire: each receiver declares the public ones
(:class:`Scales`) and checks the shape of everything before it computes on it or decrypts it.

G sums step 6 over j and removes its S_j, so it learns only sum_j (beta X_G)^T u_j, which its own
gradient X_G^T d reveals anyway. Scores for validation and prediction: H_j -> G u_j + Z_j.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from crypto.random import RandomSource, SeededRandom, resolve
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.hetero_lr._messages import Revealed, ScoreRequest, expect
from vfl.hetero_lr._scheme import (
    GRADIENT_BOUND_BITS,
    MASK_SLACK_BITS,
    KeyOwner,
    Masked,
    PeerKey,
    check_bound,
)

__all__ = [
    "PROTOCOL_VERSION",
    "SCORE_SCALE_BITS",
    "Topics",
    "ZeroSum",
    "feature_batch",
    "feature_scores",
    "label_batch",
    "label_scores",
]

PROTOCOL_VERSION = 2
SCORE_SCALE_BITS = 40
# Zero-sum masks on the masked cross terms ((v + S) mod n_j: up to the key size) are this wide, so
# they hide (v + S) mod n_j from G with >= 128 bits of slack for keys up to 4096 bits; every
# feature party uses the same width.
ZERO_SUM_SLACK_BITS = 128
ZERO_SUM_BITS = 4096 + ZERO_SUM_SLACK_BITS


class Topics:
    """Channel topics of hetero LR (one per message kind)."""

    SETUP = "hetero_lr/setup"
    HELLO = "hetero_lr/hello"
    KEY = "hetero_lr/key"
    PAIR_SEED = "hetero_lr/pair_seed"
    ALPHA = "hetero_lr/alpha"
    BETA = "hetero_lr/beta"
    U = "hetero_lr/u"
    E = "hetero_lr/e"
    G = "hetero_lr/g"
    V = "hetero_lr/v"
    G_OPEN = "hetero_lr/g_open"
    V_OPEN = "hetero_lr/v_open"
    SCORE_REQUEST = "hetero_lr/score_request"
    SCORES = "hetero_lr/scores"
    EPOCH_END = "hetero_lr/epoch_end"


class ZeroSum:
    """Pairwise zero-sum masks between feature parties: sum_j Z_j = 0 exactly.

    H_j and H_l (j < l by name) share a 32-byte seed s_jl sent H_j -> H_l (G never sees it).
    Z_j = sum_{l > j} F(s_jl, ctx) - sum_{l < j} F(s_lj, ctx), F a SHAKE-256 stream
    (:class:`crypto.random.SeededRandom`) keyed by the seed and the context string, giving
    integers uniform in [0, 2^bits). With one feature party Z = 0.
    """

    def __init__(self, me: str, seeds: Mapping[str, bytes]) -> None:
        self._me = me
        self._seeds = dict(seeds)

    @staticmethod
    def exchange(
        channel: Channel, feature_parties: Sequence[str], *, rng: RandomSource | None = None
    ) -> ZeroSum:
        me = channel.party
        rng = resolve(rng)
        seeds: dict[str, bytes] = {}
        for other in feature_parties:
            if other == me:
                continue
            if me < other:
                seed = rng.random_bytes(32)
                channel.send(other, Topics.PAIR_SEED, seed)
                seeds[other] = seed
        for other in feature_parties:
            if other != me and other < me:
                seed = channel.recv(other, Topics.PAIR_SEED)
                if not isinstance(seed, bytes) or len(seed) != 32:
                    raise VflError(f"{other} sent a malformed pairwise seed")
                seeds[other] = seed
        return ZeroSum(me, seeds)

    def masks(self, context: str, count: int, *, bits: int) -> list[int]:
        out = [0] * count
        upper = 1 << bits
        for other, seed in sorted(self._seeds.items()):
            stream = SeededRandom(hashlib.sha256(seed + context.encode()).digest())
            sign = 1 if self._me < other else -1
            for i in range(count):
                out[i] += sign * stream.randbelow(upper)
        return out


@dataclass(frozen=True)
class BatchContext:
    """Identifies one batch in mask contexts: task, epoch, batch number."""

    task: int
    epoch: int
    batch: int

    def label(self, what: str) -> str:
        return f"{what}/{self.task}/{self.epoch}/{self.batch}"


def _revealed(channel: Channel, peer: str, topic: str, count: int) -> list[int]:
    """A :class:`Revealed` message of exactly ``count`` integers."""
    values = expect(channel, peer, topic, Revealed).values
    if len(values) != count:
        raise VflError(f"{peer} sent {len(values)} values on {topic}, expected {count} integers")
    return list(values)


@dataclass(frozen=True)
class Scales:
    """The public fixed-point scales of every ciphertext kind, from the configuration alone.

    Both sides derive them from ``crypto.precision_bits`` (``p``) and whether beta is the public
    Taylor constant; the wire carries no scale or bound, so a peer cannot declare its own.
    ``|value| < 2^GRADIENT_BOUND_BITS`` in real units for alpha, beta and u;
    ``2^(2 GRADIENT_BOUND_BITS)`` for the products ``beta * u``.
    """

    precision: int
    beta_public: bool

    @property
    def alpha(self) -> int:
        """[[alpha]] and [[beta * u_j]]: p when beta is public, else 2p (beta times u)."""
        return self.precision if self.beta_public else 2 * self.precision


# ---------------------------------------------------------------------------------------------
# label party


def label_batch(
    channel: Channel,
    *,
    owner: KeyOwner,
    feature_keys: Mapping[str, PeerKey],
    feature_columns: Mapping[str, int],
    x: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    beta_public: bool,
    ctx: BatchContext,
) -> np.ndarray:
    """One batch at G; returns its gradient X_G^T d / m.

    ``beta_public``: beta is the public constant of the Taylor rule (no class weights), so it is
    not sent; otherwise [[beta]] is sent encrypted. ``feature_columns``: each feature party's
    column count (from its hello), the shape of the gradient G decrypts for it.
    """
    parties = sorted(feature_keys)
    m = x.shape[0]
    scales = Scales(owner.public.precision_bits, beta_public)
    # [[beta]] first: H starts [[beta]] * u_j while G encrypts alpha. H computes [[beta]] * u_j at
    # twice the precision; alpha is encrypted at that scale too, so adding it needs no rescaling.
    if not beta_public:
        channel.broadcast(Topics.BETA, owner.public.encrypt(beta), peers=parties, round=ctx.batch)
    channel.broadcast(
        Topics.ALPHA,
        owner.public.encrypt(alpha, scale_bits=scales.alpha),
        peers=parties,
        round=ctx.batch,
    )
    weighted = x * beta[:, None]
    kept: dict[str, Masked] = {}
    for party in parties:
        key = feature_keys[party]
        enc_u = key.accept(
            channel.recv(party, Topics.U),
            shape=(m,),
            scale_bits=key.precision_bits,
            bound_bits=GRADIENT_BOUND_BITS,
        )
        masked, kept[party] = key.mask(weighted.T @ enc_u)
        channel.send(party, Topics.V, masked, round=ctx.batch)
    for party in parties:
        # Count and shape are checked before anything is decrypted; the residues go back as is.
        opened = owner.decrypt_raw(channel.recv(party, Topics.G), shape=(feature_columns[party],))
        channel.send(party, Topics.G_OPEN, Revealed(opened), round=ctx.batch)
    scale_bits = {k.scale_bits for k in kept.values()}
    if len(scale_bits) != 1:
        raise VflError("feature parties' scores use different fixed-point scales")
    scale = scale_bits.pop()
    total = [0] * x.shape[1]
    for party in parties:
        raw = _revealed(channel, party, Topics.V_OPEN, x.shape[1])
        total = [t + r - s for t, r, s in zip(total, raw, kept[party].masks, strict=True)]
    # sum_j ((v_j + S_j) mod n_j + Z_j - S_j) = sum_j v_j unless some v_j + S_j wrapped mod n_j
    # (probability |v_j| / n_j < 2^-900): then the bound check below fails loudly.
    check_bound(total, scale, "cross term")
    cross = np.array([v / (1 << scale) for v in total], dtype=np.float64)
    return np.asarray((x.T @ alpha + cross) / m, dtype=np.float64)


def label_scores(
    channel: Channel, *, feature_parties: Sequence[str], n_rows: int, n_tasks: int, nonce: str
) -> np.ndarray:
    """sum_j u_j (shape n_rows x n_tasks) for rows G scores; it learns only the sum when k >= 2."""
    channel.broadcast(Topics.SCORE_REQUEST, ScoreRequest(n_rows, nonce), peers=feature_parties)
    total = [0] * (n_rows * n_tasks)
    for party in feature_parties:
        raw = _revealed(channel, party, Topics.SCORES, n_rows * n_tasks)
        total = [a + b for a, b in zip(total, raw, strict=True)]
    scale = 1 << SCORE_SCALE_BITS
    return np.array([v / scale for v in total], dtype=np.float64).reshape(n_rows, n_tasks)


# ---------------------------------------------------------------------------------------------
# feature party


def feature_batch(
    channel: Channel,
    *,
    label_party: str,
    owner: KeyOwner,
    label_key: PeerKey,
    others: Sequence[str],
    zero_sum: ZeroSum,
    x: np.ndarray,
    w: np.ndarray,
    beta_constant: float | None,
    label_columns: int,
    ctx: BatchContext,
) -> np.ndarray:
    """One batch at H_j; returns its gradient X_j^T d / m.

    Every ciphertext from a peer is accepted with the shape, scale and bound this party derives
    from the configuration (:class:`Scales`); ``label_columns`` is G's column count (the shape of
    the cross term this party decrypts for G).
    """
    m = x.shape[0]
    scales = Scales(label_key.precision_bits, beta_constant is not None)
    u = x @ w
    channel.send(label_party, Topics.U, owner.public.encrypt(u), round=ctx.batch)
    if beta_constant is None:
        enc_beta = label_key.accept(
            channel.recv(label_party, Topics.BETA),
            shape=(m,),
            scale_bits=label_key.precision_bits,
            bound_bits=GRADIENT_BOUND_BITS,
        )
        own = enc_beta * u
    else:
        own = None
    if others:
        if own is None:
            share = label_key.encrypt(beta_constant * u)  # type: ignore[operator]
        else:
            share = label_key.rerandomize(own)
        channel.broadcast(Topics.E, share, peers=others, round=ctx.batch)
    enc_alpha = label_key.accept(
        channel.recv(label_party, Topics.ALPHA),
        shape=(m,),
        scale_bits=scales.alpha,
        bound_bits=GRADIENT_BOUND_BITS,
    )
    # ``own`` first: the sum keeps own's encoding, so X^T @ d encodes X at the default precision.
    d = own + enc_alpha if own is not None else enc_alpha + beta_constant * u  # type: ignore[operator]
    for other in others:
        d = d + label_key.accept(
            channel.recv(other, Topics.E),
            shape=(m,),
            scale_bits=scales.alpha,
            bound_bits=2 * GRADIENT_BOUND_BITS,
        )
    masked, kept = label_key.mask(x.T @ d)
    channel.send(label_party, Topics.G, masked, round=ctx.batch)
    # Count and shape are checked before anything is decrypted.
    raw = owner.decrypt_raw(channel.recv(label_party, Topics.V), shape=(label_columns,))
    if any(v >= 1 << (ZERO_SUM_BITS - ZERO_SUM_SLACK_BITS) for v in raw):
        raise VflError("this party's key is too large for the zero-sum masks")
    z = zero_sum.masks(ctx.label("v"), len(raw), bits=ZERO_SUM_BITS)
    channel.send(
        label_party,
        Topics.V_OPEN,
        Revealed([a + b for a, b in zip(raw, z, strict=True)]),
        round=ctx.batch,
    )
    opened = _revealed(channel, label_party, Topics.G_OPEN, x.shape[1])
    return np.asarray(kept.unmask(opened, what="gradient") / m, dtype=np.float64)


def feature_scores(
    channel: Channel,
    *,
    label_party: str,
    zero_sum: ZeroSum,
    x: np.ndarray,
    w: np.ndarray,
    expected_nonce: str,
) -> None:
    """Answer one score request: u_j = X_j W_j on the requested rows, with zero-sum masks."""
    request = expect(channel, label_party, Topics.SCORE_REQUEST, ScoreRequest)
    if request.n_rows != x.shape[0]:
        raise VflError(
            f"{label_party} asked for scores on {request.n_rows} rows, this party holds {x.shape[0]}"
        )
    if request.nonce != expected_nonce:
        raise VflError(
            f"score request out of step: expected {expected_nonce!r}, got {request.nonce!r}"
        )
    u = (x @ w).ravel()
    if np.any(np.abs(u) >= 2.0**GRADIENT_BOUND_BITS):
        raise VflError("a score exceeds the fixed-point bound; the model has diverged")
    raw = [int(v) for v in np.round(u * float(1 << SCORE_SCALE_BITS))]
    bits = GRADIENT_BOUND_BITS + SCORE_SCALE_BITS + MASK_SLACK_BITS
    z = zero_sum.masks(f"scores/{expected_nonce}", len(raw), bits=bits)
    channel.send(label_party, Topics.SCORES, Revealed([a + b for a, b in zip(raw, z, strict=True)]))
