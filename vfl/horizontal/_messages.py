"""Wire messages of the horizontal protocol (typed, frozen; encoded by the ``struct`` codec).

Topics: ``fl/profile`` (client -> aggregator, once), ``fl/task`` (aggregator -> client: a
:class:`TrainTask` or the final :class:`Finish`), ``fl/update`` (client -> aggregator, tagged with
the round it answers), ``fl/report`` (client -> aggregator after :class:`Finish`). A secure round
(Bonawitz et al. 2017, :mod:`vfl.horizontal._secagg`) adds, between the task and the update,
``fl/secagg-advertise`` (client: :class:`SecAggAdvertise`), ``fl/secagg-roster`` (aggregator:
:class:`SecAggRoster`), ``fl/secagg-shares`` (client: :class:`SecAggShares`),
``fl/secagg-inbox`` (aggregator: :class:`SecAggInbox`) and after it ``fl/secagg-unmask``
(aggregator: :class:`SecAggUnmask`) and ``fl/secagg-reveal`` (client: :class:`SecAggReveal`).
Every aggregator message of a secure round goes to every client that got the round's task; a
client not listed in it leaves the round.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protocols.messages import message_type
from vfl.compression import QuantizedArray, SketchedArray, SparseArray

__all__ = [
    "TOPIC_PROFILE",
    "TOPIC_TASK",
    "TOPIC_UPDATE",
    "TOPIC_REPORT",
    "TOPIC_SECAGG_ADVERTISE",
    "TOPIC_SECAGG_ROSTER",
    "TOPIC_SECAGG_SHARES",
    "TOPIC_SECAGG_INBOX",
    "TOPIC_SECAGG_UNMASK",
    "TOPIC_SECAGG_REVEAL",
    "SECAGG_TOPICS",
    "FEDAVG_TOPICS",
    "Payload",
    "SecAggAdvertise",
    "SecAggRoster",
    "SecAggShares",
    "SecAggInbox",
    "SecAggUnmask",
    "SecAggReveal",
    "ProfileSummary",
    "TrainTask",
    "Finish",
    "ClientUpdate",
    "CompressedUpdate",
    "ClientReport",
]

TOPIC_PROFILE = "fl/profile"
TOPIC_TASK = "fl/task"
TOPIC_UPDATE = "fl/update"
TOPIC_REPORT = "fl/report"
TOPIC_SECAGG_ADVERTISE = "fl/secagg-advertise"
TOPIC_SECAGG_ROSTER = "fl/secagg-roster"
TOPIC_SECAGG_SHARES = "fl/secagg-shares"
TOPIC_SECAGG_INBOX = "fl/secagg-inbox"
TOPIC_SECAGG_UNMASK = "fl/secagg-unmask"
TOPIC_SECAGG_REVEAL = "fl/secagg-reveal"
SECAGG_TOPICS = (
    TOPIC_SECAGG_ADVERTISE,
    TOPIC_SECAGG_ROSTER,
    TOPIC_SECAGG_SHARES,
    TOPIC_SECAGG_INBOX,
    TOPIC_SECAGG_UNMASK,
    TOPIC_SECAGG_REVEAL,
)
FEDAVG_TOPICS = (TOPIC_PROFILE, TOPIC_TASK, TOPIC_UPDATE, TOPIC_REPORT, *SECAGG_TOPICS)
"""Every topic of the horizontal protocol: a channel used only for it refuses any other
(:class:`protocols.limits.InboxLimits`)."""

Payload = np.ndarray | QuantizedArray | SparseArray | SketchedArray
"""An update on the wire: a dense array, or a compressed payload (:mod:`vfl.compression`)."""


@message_type("fl.SecAggAdvertise")
@dataclass(frozen=True)
class SecAggAdvertise:
    """A client's fresh round keys: share-encryption ``C_u``, mask ``S_u`` (X25519 public keys)
    and the commitment ``SHA-256(b_u)`` to its self-mask seed, with the client's federation
    signature over (job, session, round, client, keys, commitment)
    (:func:`vfl.horizontal._secagg.advertisement_statement`)."""

    round: int
    share_public: bytes
    mask_public: bytes
    self_commitment: bytes
    signature: bytes


@message_type("fl.SecAggRoster")
@dataclass(frozen=True)
class SecAggRoster:
    """The round's participants ``U1`` with their advertised keys, commitments and signatures
    (every client checks each one), the Shamir threshold ``t``, the round nonce (binds keys and
    shares to this round) and the job label."""

    round: int
    job: str
    nonce: bytes
    threshold: int
    share_publics: dict[str, bytes]
    mask_publics: dict[str, bytes]
    commitments: dict[str, bytes]
    signatures: dict[str, bytes]


@message_type("fl.SecAggShares")
@dataclass(frozen=True)
class SecAggShares:
    """Sealed shares of ``(s_u, b_u)``, one per other participant (recipient -> ciphertext)."""

    round: int
    sealed: dict[str, bytes]


@message_type("fl.SecAggInbox")
@dataclass(frozen=True)
class SecAggInbox:
    """``U2`` (whose shares went out) and the sealed shares addressed to this client (sender ->
    ciphertext)."""

    round: int
    participants: list[str]
    sealed: dict[str, bytes]


@message_type("fl.SecAggUnmask")
@dataclass(frozen=True)
class SecAggUnmask:
    """``U3`` (whose masked input arrived) and the rest of ``U2`` (dropped): reveal ``b`` shares
    of the survivors and ``s`` shares of the dropped, never both for one client."""

    round: int
    survivors: list[str]
    dropped: list[str]


@message_type("fl.SecAggReveal")
@dataclass(frozen=True)
class SecAggReveal:
    """Shares (field elements, big-endian) for the aggregator: ``self_shares`` of survivors,
    ``mask_shares`` of dropped clients; ``refused`` lists senders whose sealed share failed to
    authenticate."""

    round: int
    self_shares: dict[str, bytes]
    mask_shares: dict[str, bytes]
    refused: list[str]


@message_type("fl.ProfileSummary")
@dataclass(frozen=True)
class ProfileSummary:
    """A client's label counts and per-feature quantile sketch (``(q, d)``), for the profile."""

    label_counts: dict[str, int]
    quantiles: np.ndarray
    num_samples: int


@message_type("fl.TrainTask")
@dataclass(frozen=True)
class TrainTask:
    """Train from ``params`` for one round (``round`` is the model version in async mode)."""

    round: int
    params: np.ndarray
    epochs: int
    learning_rate: float
    batch_size: int
    mu: float
    l2: float
    secure: bool = False
    """Secure aggregation: run the masking steps and send ``mask(n_i * delta_i)``."""
    compression: str = "none"
    """How to send the update: ``none`` or a :data:`vfl.compression.UPDATE_COMPRESSIONS`
    name (the client keeps its error-feedback state)."""
    compression_ratio: float = 0.1
    """Fraction of entries top-k keeps (``topk``, ``topk+q8``), or the sketch width fraction."""
    clip_norm: float = 0.0
    """Secure rounds with central DP: clip ``delta`` to this L2 norm and send it unweighted."""
    secure_step: float = 0.0
    """Secure rounds with ``q8``: quantise with this step into the 8-bit ring before masking
    (0: 64-bit fixed point)."""


@message_type("fl.Finish")
@dataclass(frozen=True)
class Finish:
    """Training is over: the final global parameters, and local fine-tuning epochs (may be 0)."""

    params: np.ndarray
    personalise_epochs: int
    learning_rate: float
    batch_size: int


@message_type("fl.ClientUpdate")
@dataclass(frozen=True)
class ClientUpdate:
    """``delta = local params - params of round``; ``num_samples`` weights FedAvg."""

    round: int
    delta: np.ndarray
    num_samples: int


@message_type("fl.CompressedUpdate")
@dataclass(frozen=True)
class CompressedUpdate:
    """A :class:`ClientUpdate` whose ``delta`` travels compressed (the aggregator decodes it)."""

    round: int
    payload: Payload
    num_samples: int


@message_type("fl.ClientReport")
@dataclass(frozen=True)
class ClientReport:
    """Local validation metrics of the global model, and after personalisation if it ran."""

    metrics: dict[str, float]
