"""The message steps of hetero LR, one function per step and role (see docs/protocols/hetero_lr.md).

Roles: the label party ``G`` (labels, intercept, key ``pk_G``) and feature parties ``H_1..H_k``
(each with its own key ``pk_j``). Per mini-batch, with d = alpha + beta * sum_j u_j the (class
weighted, linearised) residual that nobody sees in clear:

1. G -> H_j   [[alpha]]_G and, unless beta is a public constant, [[beta]]_G
2. H_j -> G   [[u_j]]_j                       (its own key: G cannot decrypt it)
   H_j -> H_l [[beta * u_j]]_G, re-randomised  (k >= 2 only; G never receives these)
3. H_j -> G   [[X_j^T d + R_j]]_G              (masked, re-randomised)
4. G -> H_j   [[(beta X_G)^T u_j + S_j]]_j     (masked, re-randomised)
5. G -> H_j   X_j^T d + R_j                    (exact integers; H_j removes R_j)
6. H_j -> G   (beta X_G)^T u_j + S_j + Z_j     (Z_j: zero-sum masks between feature parties)

G sums step 6 over j and removes its S_j, so it learns only sum_j (beta X_G)^T u_j, which its own
gradient X_G^T d reveals anyway. Scores for validation and prediction: H_j -> G u_j + Z_j.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crypto.random import RandomSource, SeededRandom, resolve
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.hetero_lr._scheme import GRADIENT_BOUND_BITS, MASK_SLACK_BITS, KeyOwner, Masked, PeerKey

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

PROTOCOL_VERSION = 1
SCORE_SCALE_BITS = 40
# Zero-sum masks on the masked cross terms (v + S, at most a few hundred bits) are this wide, so
# they hide v + S from G with >= 40 bits of slack; every feature party uses the same width.
ZERO_SUM_BITS = 1024


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


def _raw_ints(message: Any, topic: str, peer: str, count: int) -> list[int]:
    if not isinstance(message, dict) or not isinstance(message.get("raw"), list):
        raise VflError(f"{peer} sent a malformed {topic} message")
    raw = message["raw"]
    if len(raw) != count or not all(isinstance(v, int) for v in raw):
        raise VflError(f"{peer} sent {len(raw)} values on {topic}, expected {count} integers")
    return list(raw)


# ---------------------------------------------------------------------------------------------
# label party


def label_batch(
    channel: Channel,
    *,
    owner: KeyOwner,
    feature_keys: Mapping[str, PeerKey],
    x: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    beta_public: bool,
    ctx: BatchContext,
) -> np.ndarray:
    """One batch at G; returns its gradient X_G^T d / m.

    ``beta_public``: beta is the public constant of the Taylor rule (no class weights), so it is
    not sent; otherwise [[beta]] is sent encrypted.
    """
    parties = sorted(feature_keys)
    m = x.shape[0]
    # [[beta]] first: H starts [[beta]] * u_j while G encrypts alpha. H computes [[beta]] * u_j at
    # twice the precision; alpha is encrypted at that scale too, so adding it needs no rescaling.
    if not beta_public:
        channel.broadcast(Topics.BETA, owner.public.encrypt(beta), peers=parties, round=ctx.batch)
    alpha_scale = None if beta_public else 2 * owner.public.precision_bits
    channel.broadcast(
        Topics.ALPHA,
        owner.public.encrypt(alpha, scale_bits=alpha_scale),
        peers=parties,
        round=ctx.batch,
    )
    weighted = x * beta[:, None]
    kept: dict[str, Masked] = {}
    for party in parties:
        enc_u = channel.recv(party, Topics.U)
        key = feature_keys[party]
        if not key.is_ciphertext(enc_u):
            raise VflError(
                f"{party} sent its scores in a form that is not a ciphertext under its key"
            )
        masked, kept[party] = key.mask(weighted.T @ enc_u)
        channel.send(party, Topics.V, masked, round=ctx.batch)
    for party in parties:
        enc_g = channel.recv(party, Topics.G)
        if not owner.public.is_ciphertext(enc_g):
            raise VflError(f"{party} sent a gradient that is not a ciphertext under our key")
        channel.send(party, Topics.G_OPEN, {"raw": owner.decrypt_raw(enc_g)}, round=ctx.batch)
    scales = {k.scale_bits for k in kept.values()}
    if len(scales) != 1:
        raise VflError("feature parties' scores use different fixed-point scales")
    total = [0] * x.shape[1]
    for party in parties:
        raw = _raw_ints(channel.recv(party, Topics.V_OPEN), Topics.V_OPEN, party, x.shape[1])
        total = [t + r - s for t, r, s in zip(total, raw, kept[party].masks, strict=True)]
    scale = 1 << scales.pop()
    cross = np.array([v / scale for v in total], dtype=np.float64)
    return np.asarray((x.T @ alpha + cross) / m, dtype=np.float64)


def label_scores(
    channel: Channel, *, feature_parties: Sequence[str], n_rows: int, n_tasks: int, nonce: str
) -> np.ndarray:
    """sum_j u_j (shape n_rows x n_tasks) for rows G scores; it learns only the sum when k >= 2."""
    channel.broadcast(
        Topics.SCORE_REQUEST, {"n_rows": n_rows, "nonce": nonce}, peers=feature_parties
    )
    total = [0] * (n_rows * n_tasks)
    for party in feature_parties:
        raw = _raw_ints(channel.recv(party, Topics.SCORES), Topics.SCORES, party, n_rows * n_tasks)
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
    ctx: BatchContext,
) -> np.ndarray:
    """One batch at H_j; returns its gradient X_j^T d / m."""
    m = x.shape[0]
    u = x @ w
    channel.send(label_party, Topics.U, owner.public.encrypt(u), round=ctx.batch)
    if beta_constant is None:
        enc_beta = channel.recv(label_party, Topics.BETA)
        if not label_key.is_ciphertext(enc_beta):
            raise VflError(f"{label_party} sent beta that is not a ciphertext under its key")
        own = enc_beta * u
    else:
        own = None
    if others:
        if own is None:
            share = label_key.encrypt(beta_constant * u)  # type: ignore[operator]
        else:
            share = label_key.rerandomize(own)
        channel.broadcast(Topics.E, share, peers=others, round=ctx.batch)
    enc_alpha = channel.recv(label_party, Topics.ALPHA)
    if not label_key.is_ciphertext(enc_alpha):
        raise VflError(f"{label_party} sent alpha that is not a ciphertext under its key")
    # ``own`` first: the sum keeps own's encoding, so X^T @ d encodes X at the default precision.
    d = own + enc_alpha if own is not None else enc_alpha + beta_constant * u  # type: ignore[operator]
    for other in others:
        enc_e = channel.recv(other, Topics.E)
        if not label_key.is_ciphertext(enc_e):
            raise VflError(
                f"{other} sent a share that is not a ciphertext under the label party's key"
            )
        d = d + enc_e
    masked, kept = label_key.mask(x.T @ d)
    channel.send(label_party, Topics.G, masked, round=ctx.batch)
    enc_v = channel.recv(label_party, Topics.V)
    if not owner.public.is_ciphertext(enc_v):
        raise VflError(f"{label_party} sent a value that is not a ciphertext under our key")
    raw = owner.decrypt_raw(enc_v)
    if any(abs(v) >= 1 << (ZERO_SUM_BITS - MASK_SLACK_BITS) for v in raw):
        raise VflError("a masked value is too large for the zero-sum masks")
    z = zero_sum.masks(ctx.label("v"), len(raw), bits=ZERO_SUM_BITS)
    channel.send(
        label_party,
        Topics.V_OPEN,
        {"raw": [a + b for a, b in zip(raw, z, strict=True)]},
        round=ctx.batch,
    )
    opened = _raw_ints(
        channel.recv(label_party, Topics.G_OPEN), Topics.G_OPEN, label_party, x.shape[1]
    )
    return np.asarray(kept.unmask(opened) / m, dtype=np.float64)


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
    request = channel.recv(label_party, Topics.SCORE_REQUEST)
    if not isinstance(request, dict) or request.get("n_rows") != x.shape[0]:
        raise VflError(
            f"{label_party} asked for scores on {request.get('n_rows') if isinstance(request, dict) else '?'} rows, this party holds {x.shape[0]}"
        )
    if request.get("nonce") != expected_nonce:
        raise VflError(
            f"score request out of step: expected {expected_nonce!r}, got {request.get('nonce')!r}"
        )
    u = (x @ w).ravel()
    if np.any(np.abs(u) >= 2.0**GRADIENT_BOUND_BITS):
        raise VflError("a score exceeds the fixed-point bound; the model has diverged")
    raw = [int(v) for v in np.round(u * float(1 << SCORE_SCALE_BITS))]
    bits = GRADIENT_BOUND_BITS + SCORE_SCALE_BITS + MASK_SLACK_BITS
    z = zero_sum.masks(f"scores/{expected_nonce}", len(raw), bits=bits)
    channel.send(label_party, Topics.SCORES, {"raw": [a + b for a, b in zip(raw, z, strict=True)]})
