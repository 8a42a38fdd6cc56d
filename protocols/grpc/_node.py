"""A party's node: its gRPC server (mutual TLS, TLS 1.3 only, health service), its client
connections to the peers, heartbeats, and the job sessions it has open.

    node = PartyNode(load_federation("federation.toml"), "bank").start()
    channel = node.channel("job-1")          # a protocols.channel.Channel over gRPC
    ...
    node.stop()

Embedding in an existing server: ``node.register(server)`` adds the party servicer and the
health service to a ``grpc.Server`` the caller owns (the caller then provides its own mutual-TLS
port; :func:`server_credentials` builds the right credentials).
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from protocols._pb import pb_grpc
from protocols._tls_policy import tls12_refused
from protocols.codecs import CodecRegistry, default_registry
from protocols.config import FederationConfig
from protocols.errors import ConfigError, LocalProtocolError
from protocols.grpc._channel import GrpcChannel
from protocols.grpc._monitor import DEFAULT_HEARTBEAT_INTERVAL, PeerMonitor
from protocols.grpc._servicer import SPOOL_THRESHOLD, PartyServicer
from protocols.grpc._session import Session
from protocols.grpc._tls_probe import certificate_problem
from protocols.limits import InboxLimits
from protocols.verify import Verifier

__all__ = ["PartyNode", "server_credentials", "client_credentials", "MAX_MESSAGE_BYTES"]

_log = logging.getLogger("protocols.grpc")
MAX_MESSAGE_BYTES = 8 << 20
SERVICE_NAME = "vfl.federation.v1.PartyService"
_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
    ("grpc.http2.max_ping_strikes", 0),
    # gRPC sets SO_REUSEPORT by default, so a second node for the same party would listen on
    # the same port and share its connections. One node per address: refuse the second.
    ("grpc.so_reuseport", 0),
]


def server_credentials(config: FederationConfig, party: str) -> grpc.ServerCredentials:
    """Mutual TLS: the party's certificate, clients must present one issued by the CA."""
    key, cert = config.tls_identity(party)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=config.ca_pem(), require_client_auth=True
    )


def client_credentials(config: FederationConfig, party: str) -> grpc.ChannelCredentials:
    """The party's client certificate, and the federation CA to verify servers."""
    key, cert = config.tls_identity(party)
    return grpc.ssl_channel_credentials(
        root_certificates=config.ca_pem(), private_key=key, certificate_chain=cert
    )


def _refuse_bound(bind: str) -> None:
    """Raise ``ConfigError`` if ``bind`` (``HOST:PORT``) is already taken by another process.

    A probe bind without ``SO_REUSEPORT``, so a listener of any process makes it fail; port 0 (any free port) and names that do not resolve are left to gRPC.
    """
    host, _, port_text = bind.rpartition(":")
    host = host.strip("[]")
    if not port_text.isdigit() or int(port_text) == 0:
        return
    try:
        infos = socket.getaddrinfo(
            host or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return
    for family, kind, proto, _name, address in infos:
        with socket.socket(family, kind, proto) as probe:
            # SO_REUSEADDR: connections of an earlier node left in TIME_WAIT do not count,
            # a listening socket still does (on Linux and macOS).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ConfigError(
                        f"address {bind} is already in use by another process"
                    ) from None
                continue


class PartyNode:
    """One party's gRPC node. ``bind`` defaults to the party's address in the config."""

    def __init__(
        self,
        config: FederationConfig,
        party: str,
        *,
        bind: str | None = None,
        max_workers: int = 8,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        spool_dir: Path | None = None,
        spool_threshold: int = SPOOL_THRESHOLD,
        codecs: CodecRegistry | None = None,
        check_tls13: bool = True,
        limits: InboxLimits | None = None,
    ) -> None:
        self.config = config
        self.limits = limits or InboxLimits()
        """Default :class:`~protocols.limits.InboxLimits` of this node's channels."""
        self.party = party
        self._me = config.party(party)
        self.signing_key = config.signing_key(party)
        if self.signing_key.verify_key != self._me.signing_public_key:
            raise ConfigError(
                f"parties.{party}.signing_key does not match parties.{party}.signing_public_key"
            )
        self._bind = bind or self._me.address
        self._max_workers = max_workers
        self._check_tls13 = check_tls13
        self.codecs = codecs if codecs is not None else default_registry()
        self._keys = config.verify_keys()
        self.verify_keys = self._keys
        """Every party's federation verify key (envelopes and attested statements)."""
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], Session] = {}
        self._runs: dict[str, str] = {}  # job id -> its agreed run session (while open)
        self.health = health.HealthServicer()
        creds = client_credentials(config, party)
        self.peer_channels: dict[str, grpc.Channel] = {}
        for name, peer in config.parties.items():
            if name == party:
                continue
            options = [
                ("grpc.ssl_target_name_override", name),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_timeout_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 2_000),
            ]
            self.peer_channels[name] = grpc.secure_channel(peer.address, creds, options=options)
        self.monitor = PeerMonitor(
            self.peer_channels,
            interval=heartbeat_interval,
            on_change=self._wake_sessions,
            expected_gone=self._peer_done,
            classify=self._certificate_problem,
        )
        self.servicer = PartyServicer(
            party=party,
            keys=self._keys,
            sessions=self._session,
            run_session=self.run_session,
            spool_dir=spool_dir,
            spool_threshold=spool_threshold,
            on_delivered=self.monitor.mark_seen,
        )
        self._server: grpc.Server | None = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def register(self, server: grpc.Server) -> None:
        """Add the party service and the standard health service to ``server``."""
        pb_grpc.add_PartyServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)

    def start(self) -> PartyNode:
        """Listen on ``bind`` with mutual TLS, check that TLS 1.2 is refused, start heartbeats."""
        if self._server is not None:
            raise LocalProtocolError(f"node {self.party!r} is already started")
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="vfl-rpc"),
            options=_SERVER_OPTIONS,
        )
        self.register(server)
        _refuse_bound(self._bind)
        try:
            port = server.add_secure_port(self._bind, server_credentials(self.config, self.party))
        except RuntimeError:  # grpc >= 1.60 raises on a failed bind instead of returning 0
            port = 0
        if port == 0:
            _refuse_bound(self._bind)
            raise ConfigError(f"parties.{self.party}.address: cannot listen on {self._bind}")
        server.start()
        self._server, self.port = server, port
        if self._check_tls13:
            key, cert = self.config.tls_identity(self.party)
            host = self._bind.rpartition(":")[0].strip("[]")
            host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
            try:
                refused = tls12_refused(
                    host, port, ca_pem=self.config.ca_pem(), cert_pem=cert, key_pem=key
                )
            except OSError as exc:
                self.stop(grace=0)
                raise ConfigError(f"cannot check the TLS policy of {self._bind}: {exc}") from exc
            if not refused:
                self.stop(grace=0)
                raise ConfigError(
                    "the gRPC server accepts TLS 1.2: import protocols before any other "
                    "module imports grpc (it sets GRPC_SSL_CIPHER_SUITES), and use ECDSA keys"
                )
            _log.info(
                "TLS 1.2 probe of %s refused as expected (grpc logs it as a failed handshake)",
                self._bind,
            )
        self.monitor.start()
        _log.info("node %s listening on port %d (mutual TLS 1.3)", self.party, port)
        return self

    def stop(self, grace: float | None = 2.0) -> None:
        """Mark not serving, stop heartbeats, finish in-flight calls within ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self.monitor.stop()
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            session.close()
        server, self._server = self._server, None
        if server is not None:
            server.stop(grace).wait()
        for channel in self.peer_channels.values():
            channel.close()

    def __enter__(self) -> PartyNode:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); ``True`` if it stopped."""
        server = self._server
        return True if server is None else bool(server.wait_for_termination(timeout))

    # -- sessions ----------------------------------------------------------------------------
    def _session(self, job_id: str, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get((job_id, session_id))

    def open_session(
        self, job_id: str, session_id: str, limits: InboxLimits | None = None
    ) -> Session:
        """Start accepting messages for (``job_id``, ``session_id``), within ``limits``
        (default: the node's)."""
        key = (job_id, session_id)
        with self._lock:
            if key in self._sessions:
                raise LocalProtocolError(f"session {job_id!r}/{session_id!r} is already open")
            session = Session(
                verifier=Verifier(
                    party=self.party, job_id=job_id, session_id=session_id, keys=self._keys
                ),
                codecs=self.codecs,
                limits=limits or self.limits,
            )
            self._sessions[key] = session
            return session

    def close_session(self, job_id: str, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop((job_id, session_id), None)
            if self._runs.get(job_id) == session_id:
                del self._runs[job_id]
        if session is not None:
            session.close()

    def _certificate_problem(self, peer: str, details: str) -> str | None:
        """Why TLS with ``peer`` fails, from a direct handshake (:mod:`._tls_probe`)."""
        key, cert = self.config.tls_identity(self.party)
        return certificate_problem(
            peer,
            self.config.party(peer).address,
            ca_pem=self.config.ca_pem(),
            cert_pem=cert,
            key_pem=key,
        )

    def _peer_done(self, peer: str) -> bool:
        """``True`` if no open session needs ``peer``: it closed each of them, or none is open."""
        with self._lock:
            sessions = list(self._sessions.values())
        return all(session.peer_closed(peer) for session in sessions)

    def switch_session(self, job_id: str, old: str, new: str) -> Session:
        """Open ``job_id``'s run session ``new`` and close ``old`` (its bootstrap session): from
        now on this node refuses envelopes of any other session of the job as foreign."""
        with self._lock:
            current = self._sessions.get((job_id, old))
        session = self.open_session(job_id, new, None if current is None else current.limits)
        with self._lock:
            self._runs[job_id] = new
        self.close_session(job_id, old)
        return session

    def run_session(self, job_id: str) -> Session | None:
        """The open run session of ``job_id`` (after :meth:`switch_session`), if any."""
        with self._lock:
            run = self._runs.get(job_id)
            return None if run is None else self._sessions.get((job_id, run))

    def _wake_sessions(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            session.wake()

    def channel(
        self,
        job_id: str,
        *,
        session_id: str = "",
        send_timeout: float = 60.0,
        default_timeout: float = 120.0,
        limits: InboxLimits | None = None,
    ) -> GrpcChannel:
        """A :class:`~protocols.channel.Channel` for one job session on this node; ``limits``
        (default: the node's) bound what each peer can queue at it."""
        return GrpcChannel(
            self,
            job_id=job_id,
            session_id=session_id,
            send_timeout=send_timeout,
            default_timeout=default_timeout,
            limits=limits,
        )
