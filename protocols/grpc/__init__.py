"""The gRPC transport: party nodes with mutual TLS 1.3, chunked streaming, health, heartbeats.

Importing :mod:`protocols` sets ``GRPC_SSL_CIPHER_SUITES`` *before* ``grpc`` is imported (see
:mod:`protocols._tls_policy` for why this makes TLS 1.2 impossible); a node checks at start-up that
TLS 1.2 is really refused.
"""

from protocols._tls_policy import TLS12_CIPHER_SUITES, tls12_refused
from protocols.grpc._channel import CHUNK_BYTES, GrpcChannel, deliver
from protocols.grpc._monitor import DEFAULT_HEARTBEAT_INTERVAL, PeerMonitor
from protocols.grpc._node import PartyNode, client_credentials, server_credentials

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "GrpcChannel",
    "PartyNode",
    "PeerMonitor",
    "TLS12_CIPHER_SUITES",
    "client_credentials",
    "deliver",
    "server_credentials",
    "tls12_refused",
]
