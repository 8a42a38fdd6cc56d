"""Errors of the secure channel layer, split by whose fault it was (STYLE.md, rule 8).

``ProtocolError``
  ``LocalProtocolError`` -- this party misused the API: unknown peer, a payload no codec can
  encode (:class:`UnsupportedPayload`), a closed channel, a bad ``federation.toml`` (:class:`ConfigError`).
  ``RemoteProtocolError`` -- a peer (or the network) broke the protocol:
    ``EnvelopeRejected`` -- an envelope failed verification and was dropped, never delivered.
    One subclass per reason, each with a stable ``reason`` string used as a metrics label:
    :class:`UnknownSender`, :class:`BadSignature`, :class:`SignerMismatch`,
    :class:`WrongReceiver`, :class:`ForeignJob`, :class:`Replayed`, :class:`OutOfOrder`,
    :class:`UnsupportedVersion`, :class:`PeerIdentityMismatch` (gRPC: the TLS client
    certificate is another party's), :class:`InboxLimit` (unexpected topic or full queue).
    ``CodecError`` -- a verified payload is malformed, too large or of an unknown format.
  ``TransportError`` -- the link failed: :class:`PeerDown` (the peer is gone),
  :class:`ChannelTimeout` (nothing arrived before the deadline) and :class:`UntrustedPeer`
  (the TLS handshake failed on a certificate: permanent, never retried).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ConfigError",
    "UnsupportedPayload",
    "EnvelopeRejected",
    "UnsupportedVersion",
    "UnknownSender",
    "BadSignature",
    "SignerMismatch",
    "WrongReceiver",
    "ForeignJob",
    "Replayed",
    "OutOfOrder",
    "PeerIdentityMismatch",
    "InboxLimit",
    "CodecError",
    "TransportError",
    "PeerDown",
    "ChannelTimeout",
    "UntrustedPeer",
    "REJECTION_REASONS",
]


class ProtocolError(Exception):
    """Base class of every error raised by :mod:`protocols`."""


class LocalProtocolError(ProtocolError):
    """This party used the channel API wrongly (our fault)."""


class RemoteProtocolError(ProtocolError):
    """A peer or the network broke the protocol (their fault)."""


class ConfigError(LocalProtocolError, ValueError):
    """``federation.toml`` (or a node's settings) is wrong; the message names the key."""


class UnsupportedPayload(LocalProtocolError, TypeError):
    """No registered codec can encode this payload (or it breaks a codec's limits)."""


class EnvelopeRejected(RemoteProtocolError):
    """An envelope failed verification on receipt; it is logged, counted and dropped."""

    reason: ClassVar[str] = "rejected"


class UnsupportedVersion(EnvelopeRejected):
    """The envelope's format version is not one this party speaks."""

    reason = "unsupported_version"


class UnknownSender(EnvelopeRejected):
    """The sender is not a party of this federation (no public key for it)."""

    reason = "unknown_sender"


class BadSignature(EnvelopeRejected):
    """Missing or invalid signature, or a payload that does not match the signed digest."""

    reason = "bad_signature"


class SignerMismatch(EnvelopeRejected):
    """The envelope was signed with a key other than the claimed sender's."""

    reason = "signer_mismatch"


class WrongReceiver(EnvelopeRejected):
    """The envelope is addressed to another party."""

    reason = "wrong_receiver"


class ForeignJob(EnvelopeRejected):
    """The envelope belongs to another job or session."""

    reason = "foreign_job"


class Replayed(EnvelopeRejected):
    """The envelope's sequence number was already accepted (a duplicate or replay)."""

    reason = "replayed"


class OutOfOrder(EnvelopeRejected):
    """The envelope arrived after a later one from the same sender was accepted."""

    reason = "out_of_order"


class PeerIdentityMismatch(EnvelopeRejected):
    """The TLS client certificate belongs to another party than the envelope's sender."""

    reason = "tls_identity_mismatch"


class InboxLimit(EnvelopeRejected):
    """An authentic envelope the receiver will not queue: a topic it does not expect, a full
    per-(peer, topic) queue, too many topics waiting from one peer (:mod:`protocols.limits`)."""

    reason = "inbox_limit"


REJECTION_REASONS: tuple[type[EnvelopeRejected], ...] = (
    UnsupportedVersion,
    UnknownSender,
    BadSignature,
    SignerMismatch,
    WrongReceiver,
    ForeignJob,
    Replayed,
    OutOfOrder,
    PeerIdentityMismatch,
    InboxLimit,
)


class CodecError(RemoteProtocolError):
    """A payload is malformed, too large, of an unknown codec or version, or not decodable."""


class TransportError(ProtocolError):
    """The link to a peer failed."""


class PeerDown(TransportError):
    """The peer is gone (killed, shut down, or missed its heartbeats)."""


class ChannelTimeout(TransportError, TimeoutError):
    """No message arrived before the deadline."""


class UntrustedPeer(TransportError):
    """The TLS handshake with a peer failed on a certificate: the peer's is not issued by the
    federation CA or names another party, or the peer refused ours. Permanent: retrying cannot
    help, so it is raised at once instead of after the connect window."""
