"""The secure channel layer: envelopes, signing, replay protection, transports, test kit.

Public entry points: :class:`Channel` (the interface protocols are written against),
:mod:`protocols.memory` (``InMemoryNetwork``), :mod:`protocols.testkit` (``run_parties``),
:mod:`protocols.errors`, :mod:`protocols.codecs` and :mod:`protocols.messages` (``message_type``).
"""

from protocols._tls_policy import apply_tls13_policy

# Before anything imports grpc (it reads the setting once, on import): see protocols._tls_policy.
apply_tls13_policy()

from protocols.channel import Channel  # noqa: E402
from protocols.envelope import Envelope  # noqa: E402
from protocols.errors import (  # noqa: E402
    ChannelTimeout,
    CodecError,
    EnvelopeRejected,
    PeerDown,
    ProtocolError,
)
from protocols.messages import message_type  # noqa: E402

__all__ = [
    "Channel",
    "ChannelTimeout",
    "CodecError",
    "Envelope",
    "EnvelopeRejected",
    "PeerDown",
    "ProtocolError",
    "message_type",
]
