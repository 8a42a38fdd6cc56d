"""``GrpcChannel``: the :class:`~protocols.channel.Channel` interface over a party node.

Sending: encode -> seal (Ed25519-signed envelope with the payload's SHA-256) -> stream the
envelope and the payload in chunks of ``CHUNK_BYTES`` to the peer's node. Transient failures
(``UNAVAILABLE``: peer not up yet, session not open yet, connection lost) are retried with
exponential backoff (50 ms doubling to 2 s) until the send deadline; a rejection by the peer is
raised as its own :class:`~protocols.errors.EnvelopeRejected` subclass. Sends to one peer are
serialised so sequence numbers arrive in order.

Receiving: messages verified by the node's servicer wait in the session's inbox; ``recv``
raises ``PeerDown`` as soon as the heartbeat monitor declares the peer down or the peer closes
the session, and ``ChannelTimeout`` after ``timeout``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from protocols._pb import pb, pb_grpc
from protocols.channel import Channel
from protocols.codecs import Buffer
from protocols.digest import recut
from protocols.envelope import Envelope
from protocols.errors import (
    REJECTION_REASONS,
    ChannelTimeout,
    CodecError,
    EnvelopeRejected,
    ForeignJob,
    LocalProtocolError,
    PeerDown,
    ProtocolError,
    Replayed,
    TransportError,
    UntrustedPeer,
)
from protocols.grpc._session import CLOSE_TOPIC
from protocols.limits import InboxLimits
from protocols.sealer import Sealer
from protocols.serde import envelope_to_proto

if TYPE_CHECKING:
    from protocols.grpc._monitor import PeerMonitor
    from protocols.grpc._node import PartyNode

__all__ = ["GrpcChannel", "CHUNK_BYTES", "deliver"]

_log = logging.getLogger("protocols.grpc")
# 256 KiB: small enough that sender (encode, TLS) and receiver (TLS, hash, copy) work on
# different chunks at the same time -- with 1 MiB chunks a 1 MB payload went through the
# stack as one serial step and was 1.4x slower end to end -- and large enough that the
# per-message cost of gRPC stays small (measured: docs/protocols/channel.md, Throughput).
# Independent of the digest's 1 MiB blocks, which the receiver hashes incrementally.
CHUNK_BYTES = 256 << 10
_BYTES_PER_SECOND_FLOOR = 5e6  # the send deadline grows by 1 s per 5 MB of payload
_CLOSE_TIMEOUT = 2.0
_REASONS = {cls.reason: cls for cls in REJECTION_REASONS}


def _chunks(env: Envelope, parts: Sequence[Buffer]) -> Iterator[Any]:
    """The Send stream: the envelope, then the payload re-cut into chunks of CHUNK_BYTES.

    Each chunk's bytes are copied exactly once (a chunk spanning parts is joined from views).
    """
    yield pb.Chunk(envelope=envelope_to_proto(env))
    for views in recut(parts, CHUNK_BYTES):
        yield pb.Chunk(data=b"".join(views))


def _no_down_reason(peer: str) -> str | None:
    return None


def _no_verdict(peer: str, details: str) -> str | None:
    return None


def deliver(
    stub: Any,
    peer: str,
    env: Envelope,
    parts: Sequence[Buffer],
    *,
    timeout: float,
    down_reason: Callable[[str], str | None] = _no_down_reason,
    untrusted: Callable[[str, str], str | None] = _no_verdict,
) -> None:
    """Stream a sealed envelope and its payload over a ``PartyServiceStub``, with retries.

    ``UNAVAILABLE`` is retried with exponential backoff until ``timeout``, unless
    ``untrusted(peer, details)`` names a certificate problem (:class:`UntrustedPeer`, at once,
    not after the whole window); a rejection raises
    its own :class:`EnvelopeRejected` subclass, a malformed payload :class:`CodecError`.
    Protocol code calls :meth:`GrpcChannel.send`; this is public for tools and tests that
    replay or forge envelopes.
    """
    deadline = time.monotonic() + timeout
    delay, attempts, last = 0.05, 0, ""
    while True:
        verdict = untrusted(peer, "")  # a certificate problem already known
        if verdict is not None:
            raise UntrustedPeer(verdict)
        reason = down_reason(peer)
        if reason is not None:
            raise PeerDown(f"peer {peer!r} is down: {reason}")
        left = deadline - time.monotonic()
        if left <= 0:
            if last.startswith("session-not-open"):
                raise ForeignJob(f"{peer!r} never opened the session: {last}")
            raise PeerDown(f"peer {peer!r} unreachable for {round(timeout, 1):g} s: {last}")
        try:
            stub.Send(_chunks(env, parts), timeout=left)
            return
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
        except ValueError as exc:  # grpc: "Cannot invoke RPC on closed channel!"
            raise TransportError(f"connection to {peer!r} is closed: {exc}") from exc
        attempts += 1
        if code == grpc.StatusCode.PERMISSION_DENIED and details.startswith("rejected:"):
            cls = _REASONS.get(details.split(":", 2)[1], EnvelopeRejected)
            if cls is Replayed and attempts > 1:
                return  # an earlier attempt was delivered; only its answer was lost
            raise cls(f"{peer!r} rejected the envelope: {details}")
        if code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("codec:"):
            raise CodecError(f"{peer!r} could not decode the payload: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise ChannelTimeout(f"send to {peer!r} on {env.topic!r} timed out after {timeout:g} s")
        if code != grpc.StatusCode.UNAVAILABLE:
            raise TransportError(f"send to {peer!r} failed: {code.name}: {details}")
        verdict = untrusted(peer, details)
        if verdict is not None:
            raise UntrustedPeer(verdict)
        last = details
        _log.debug("send to %s unavailable (%s); retry in %.2f s", peer, details, delay)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 2.0)


class GrpcChannel(Channel):
    """One party's channel for one job session, over its :class:`PartyNode`."""

    def __init__(
        self,
        node: PartyNode,
        *,
        job_id: str,
        session_id: str = "",
        send_timeout: float = 60.0,
        default_timeout: float = 120.0,
        limits: InboxLimits | None = None,
    ) -> None:
        self._node = node
        self.job_id = job_id
        self.session_id = session_id
        self._send_timeout = send_timeout
        self._default_timeout = default_timeout
        self._session = node.open_session(job_id, session_id, limits)
        self.keyring = self._session.keyring
        self._peers = tuple(sorted(node.peer_channels))
        self._stubs = {p: pb_grpc.PartyServiceStub(ch) for p, ch in node.peer_channels.items()}
        self._locks = {p: threading.Lock() for p in self._peers}
        # Sequence numbers start at the wall clock in nanoseconds, so a party process that
        # crashes and restarts in the same session keeps sending numbers above everything its
        # earlier incarnation sent and can rejoin; a replay of an old envelope stays rejected.
        self._sealer = Sealer(
            node.signing_key,
            party=node.party,
            job_id=job_id,
            session_id=session_id,
            peers=self._peers,
            first_seq=time.time_ns(),
        )
        self._closed = False

    @property
    def party(self) -> str:
        return self._node.party

    @property
    def monitor(self) -> PeerMonitor:
        """The node's heartbeat monitor: peer state, round-trip time and last-seen time."""
        return self._node.monitor

    @property
    def peers(self) -> tuple[str, ...]:
        return self._peers

    @property
    def rejections(self) -> dict[str, int]:
        """Envelopes this party rejected in this session, per reason."""
        return self._session.verifier.counter.counts()

    def _check_peer(self, peer: str) -> None:
        if self._closed:
            raise LocalProtocolError(f"channel of {self.party!r} is closed")
        if peer not in self._locks:
            raise LocalProtocolError(f"{peer!r} is not a peer of {self.party!r}")

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._check_peer(peer)
        encoded = self._node.codecs.encode(payload, self._session.codec_context)
        with self._locks[peer]:
            env = self._seal_next(peer, topic, round, encoded)
            timeout = self._send_timeout + env.payload_size / _BYTES_PER_SECOND_FLOOR
            self.send_envelope(peer, env, encoded.parts, timeout=timeout)

    def send_envelope(
        self, peer: str, env: Envelope, parts: Sequence[Buffer], *, timeout: float
    ) -> None:
        """Stream an already sealed envelope to ``peer`` (see :func:`deliver`)."""
        deliver(
            self._stubs[peer],
            peer,
            env,
            parts,
            timeout=timeout,
            down_reason=self._node.monitor.down_reason,
            untrusted=self._node.monitor.classify_failure,
        )

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        self._check_peer(peer)
        return self._session.get(
            peer,
            topic,
            timeout=self._default_timeout if timeout is None else timeout,
            peer_down=self._peer_down,
            party=self.party,
        )

    def _peer_down(self, peer: str) -> str | None:
        """The monitor's verdict on ``peer``; a certificate problem raises :class:`UntrustedPeer`."""
        verdict = self._node.monitor.untrusted(peer)
        if verdict is not None:
            raise UntrustedPeer(verdict)
        return self._node.monitor.down_reason(peer)

    def _seal_next(self, peer: str, topic: str, round: int, encoded: Any) -> Envelope:
        """Sign the next envelope to ``peer`` (the caller holds ``self._locks[peer]``)."""
        return self._sealer.seal(peer, topic, round, codec=encoded.codec, parts=encoded.parts)

    def attest(self, statement: bytes) -> bytes:
        return self._sealer.attest(statement)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self._sealer.check(self._node.verify_keys, signer, statement, signature)

    def switch_session(self, session_id: str) -> None:
        if self._closed:
            raise LocalProtocolError(f"channel of {self.party!r} is closed")
        old = self.session_id
        self._session = self._node.switch_session(self.job_id, old, session_id)
        self.keyring = self._session.keyring
        self.session_id = self._sealer.session_id = session_id

    def close(self) -> None:
        """Tell the peers this party leaves the session (best effort), then stop receiving."""
        if self._closed:
            return
        for peer in self._peers:
            try:
                with self._locks[peer]:
                    encoded = self._node.codecs.encode(None, self._session.codec_context)
                    env = self._seal_next(peer, CLOSE_TOPIC, 0, encoded)
                    self.send_envelope(peer, env, encoded.parts, timeout=_CLOSE_TIMEOUT)
            except ProtocolError as exc:
                _log.info("could not tell %s about closing: %s", peer, exc)
        self._closed = True
        self._node.close_session(self.job_id, self.session_id)
