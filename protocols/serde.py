"""Conversion between the domain :class:`~protocols.envelope.Envelope` and its protobuf carrier.

Mirrored pairs, used only at the gRPC edge (the signature never covers protobuf bytes).
"""

from __future__ import annotations

from typing import Any

from protocols._pb import pb
from protocols.envelope import Envelope
from protocols.errors import CodecError, LocalProtocolError

__all__ = ["envelope_to_proto", "envelope_from_proto"]


def envelope_to_proto(env: Envelope) -> Any:
    """Domain envelope -> ``federation_pb2.Envelope``."""
    return pb.Envelope(
        version=env.version,
        job_id=env.job_id,
        session_id=env.session_id,
        sender=env.sender,
        receiver=env.receiver,
        topic=env.topic,
        round=env.round,
        seq=env.seq,
        codec=env.codec,
        payload_size=env.payload_size,
        payload_digest=env.payload_digest,
        signer=env.signer,
        signature=env.signature,
    )


def envelope_from_proto(msg: Any) -> Envelope:
    """``federation_pb2.Envelope`` -> domain envelope; malformed fields raise ``CodecError``."""
    try:
        return Envelope(
            job_id=msg.job_id,
            session_id=msg.session_id,
            sender=msg.sender,
            receiver=msg.receiver,
            topic=msg.topic,
            round=msg.round,
            seq=msg.seq,
            codec=msg.codec,
            payload_size=msg.payload_size,
            payload_digest=bytes(msg.payload_digest),
            signer=msg.signer,
            version=msg.version,
            signature=bytes(msg.signature),
        )
    except LocalProtocolError as exc:
        raise CodecError(f"malformed envelope: {exc}") from exc
