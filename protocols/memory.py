"""The in-memory transport: every party in one process, for tests and simulation.

Messages take the same path as over gRPC -- encode, seal (Ed25519-signed envelope), wire bytes,
parse, verify, decode -- so the security checks are exercised, and faults act on the wire bytes::

    net = InMemoryNetwork(["bank", "retailer"], job_id="job-1", seed=0)
    bank, retailer = net.channel("bank"), net.channel("retailer")
    bank.send("retailer", "hello", {"n": 1})
    retailer.recv("bank", "hello")            # {'n': 1}
    net.transcript.received_by("retailer")    # [Message(sender='bank', ...)]

Delivery is synchronous in the sender's thread (except for delayed messages), so with one thread
per party the run is deterministic apart from thread scheduling. Rejected envelopes are logged,
counted (``net.counter(party)``), listed in ``net.rejections`` and never delivered.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crypto.keys import SigningKey, VerifyKey
from crypto.random import RandomSource, SeededRandom
from protocols.channel import Channel
from protocols.codecs import CodecContext, CodecRegistry, Keyring, default_registry
from protocols.digest import payload_digest
from protocols.envelope import Envelope
from protocols.errors import (
    ChannelTimeout,
    CodecError,
    EnvelopeRejected,
    LocalProtocolError,
    PeerDown,
    RemoteProtocolError,
)
from protocols.faults import FaultKind, Faults
from protocols.limits import InboxLimits
from protocols.sealer import Sealer
from protocols.transcript import Message, Transcript
from protocols.verify import RejectionCounter, Verifier, check_authentic

__all__ = ["InMemoryNetwork", "MemoryChannel", "Rejection", "DEFAULT_TIMEOUT"]

_log = logging.getLogger("protocols.memory")
DEFAULT_TIMEOUT = 60.0
_MAX_EARLY = 4096


@dataclass(frozen=True)
class Rejection:
    """An envelope or payload that ``receiver`` refused, and why."""

    receiver: str
    error: RemoteProtocolError


class MemoryChannel(Channel):
    """One party's :class:`Channel` on an :class:`InMemoryNetwork`."""

    def __init__(self, network: InMemoryNetwork, party: str) -> None:
        self._net = network
        self._party = party
        self._peers = tuple(sorted(p for p in network.parties if p != party))
        self._sealer = Sealer(
            network.signing_key(party),
            party=party,
            job_id=network.job_id,
            session_id=network.session_id,
            peers=self._peers,
        )
        self.keyring = Keyring()
        self.codec_context = CodecContext(
            keyring=self.keyring, max_payload_bytes=network.limits.max_payload_bytes
        )
        self.verifier = Verifier(
            party=party,
            job_id=network.job_id,
            session_id=network.session_id,
            keys=network.verify_keys,
            counter=network.counter(party),
        )
        self._cond = threading.Condition()
        self._inbox: dict[tuple[str, str], deque[Any]] = {}
        self._send_lock = threading.Lock()
        self._switched = False
        # Envelopes of a run session a peer already switched to and this party not yet: held
        # until it switches, as the gRPC node makes their sender retry; any other session's
        # envelope is refused (ForeignJob).
        self._early: list[tuple[Envelope, bytes]] = []
        self._closed = False

    @property
    def party(self) -> str:
        return self._party

    @property
    def peers(self) -> tuple[str, ...]:
        return self._peers

    def _check_peer(self, peer: str) -> None:
        if self._closed:
            raise LocalProtocolError(f"channel of {self._party!r} is closed")
        if peer not in self._peers:
            raise LocalProtocolError(f"{peer!r} is not a peer of {self._party!r}")
        if self._net.is_dead(self._party):
            raise PeerDown(f"party {self._party!r} was killed")

    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        self._check_peer(peer)
        if self._net.is_dead(peer):
            raise PeerDown(f"peer {peer!r} is down")
        encoded = self._net.codecs.encode(payload, self.codec_context)
        with self._send_lock:
            env = self._sealer.seal(peer, topic, round, codec=encoded.codec, parts=encoded.parts)
            self._net._transmit(env, encoded.to_bytes())

    def attest(self, statement: bytes) -> bytes:
        return self._sealer.attest(statement)

    def switch_session(self, session_id: str) -> None:
        with self._send_lock, self._cond:
            if self._closed:
                raise LocalProtocolError(f"channel of {self._party!r} is closed")
            self._net._agreed.add(session_id)
            self._sealer.session_id = self.verifier.session_id = session_id
            self._switched = True
            early, self._early = self._early, []
        for env, payload in early:
            self._net._deliver(self._party, env.to_bytes(), payload)

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        return self._sealer.check(self._net.verify_keys, signer, statement, signature)

    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        self._check_peer(peer)
        wait = self._net.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        key = (peer, topic)
        with self._cond:
            while True:
                queue = self._inbox.get(key)
                if queue:
                    return queue.popleft()
                if self._closed:
                    raise LocalProtocolError(f"channel of {self._party!r} is closed")
                if self._net.is_dead(self._party):
                    raise PeerDown(f"party {self._party!r} was killed")
                if self._net.is_dead(peer):
                    raise PeerDown(f"peer {peer!r} is down (waiting on topic {topic!r})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout(
                        f"{self._party!r} got nothing from {peer!r} on {topic!r} in {wait:g} s"
                    )
                self._cond.wait(left)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _receive_wire(self, envelope: bytes, payload: bytes) -> None:
        """Parse, verify, decode and queue one message; raise the rejection if any."""
        env = Envelope.from_bytes(envelope)
        with self._cond:
            early = (not self._switched and env.job_id == self.verifier.job_id
                     and env.session_id != self.verifier.session_id
                     and env.session_id in self._net._agreed
                     and len(self._early) < _MAX_EARLY
                     and check_authentic(env, self._net.verify_keys) is None)  # fmt: skip
            if early:
                self._early.append((env, payload))
                return
        self.verifier.accept(env, digest=payload_digest([payload]), size=len(payload))
        with self._cond:
            queue = self._inbox.get((env.sender, env.topic))
            waiting = sum(1 for (p, _), q in self._inbox.items() if p == env.sender and q)
            refused = self._net.limits.admit(
                env.sender, env.topic, queued=len(queue or ()), topics_waiting=waiting,
                is_new_topic=not queue,
            )  # fmt: skip
        if refused is not None:
            raise self.verifier.reject(refused, env)
        if len(payload) > self._net.limits.max_payload_bytes:
            self._net.counter(self._party).increment("malformed")
            raise CodecError(
                f"payload of {len(payload)} bytes on {env.topic!r} exceeds the receiver's limit "
                f"of {self._net.limits.max_payload_bytes} bytes"
            )
        decoded = self._net.codecs.decode(env.codec, payload, self.codec_context)
        self._net.transcript.record(
            Message(env.sender, env.receiver, env.topic, env.round, env.seq, decoded, len(payload))
        )
        with self._cond:
            self._inbox.setdefault((env.sender, env.topic), deque()).append(decoded)
            self._cond.notify_all()


class InMemoryNetwork:
    """All parties of one job session in this process, with transcript and fault injection.

    Each party gets an Ed25519 signing key, derived from ``seed`` when given (deterministic
    keys and envelopes), else from the OS CSPRNG. ``session_id=None`` makes a fresh one.
    """

    def __init__(
        self,
        parties: Sequence[str],
        *,
        job_id: str,
        session_id: str | None = None,
        seed: int | None = None,
        default_timeout: float = DEFAULT_TIMEOUT,
        codecs: CodecRegistry | None = None,
        limits: InboxLimits | None = None,
    ) -> None:
        names = list(parties)
        if len(names) < 2 or len(set(names)) != len(names) or not all(names):
            raise LocalProtocolError("an in-memory network needs at least two distinct party names")
        rng: RandomSource | None = None if seed is None else SeededRandom(seed)
        self.parties: tuple[str, ...] = tuple(names)
        self.job_id = job_id
        if session_id is None:
            session_id = rng.random_bytes(8).hex() if rng is not None else secrets.token_hex(8)
        self.session_id = session_id
        self.default_timeout = default_timeout
        self.limits = limits or InboxLimits()
        """What each channel queues from each peer (:mod:`protocols.limits`)."""
        self.codecs = codecs if codecs is not None else default_registry()
        self._keys = {name: SigningKey.generate(rng=rng) for name in sorted(names)}
        self.verify_keys: Mapping[str, VerifyKey] = {n: k.verify_key for n, k in self._keys.items()}
        self.transcript = Transcript()
        self.faults = Faults()
        self._lock = threading.Lock()
        self._dead: set[str] = set()
        self._counters = {name: RejectionCounter() for name in names}
        self._rejections: list[Rejection] = []
        self._held: dict[tuple[str, str], list[tuple[bytes, bytes]]] = {}
        self._wire: list[tuple[bytes, bytes]] = []
        self._channels: dict[str, MemoryChannel] = {}
        self._agreed: set[str] = set()  # run sessions some channel switched to

    # -- parties -----------------------------------------------------------------------------
    def channel(self, party: str) -> MemoryChannel:
        """The channel of ``party`` (the same object on every call)."""
        if party not in self.parties:
            raise LocalProtocolError(f"{party!r} is not a party of this network")
        with self._lock:
            ch = self._channels.get(party)
            if ch is None:
                ch = self._channels[party] = MemoryChannel(self, party)
            return ch

    def signing_key(self, party: str) -> SigningKey:
        """The party's private signing key (tests use it to forge or re-sign envelopes)."""
        return self._keys[party]

    def kill(self, party: str) -> None:
        """Take ``party`` down: its peers' ``recv`` from it raise ``PeerDown`` promptly."""
        with self._lock:
            self._dead.add(party)
            channels = list(self._channels.values())
        for ch in channels:
            ch._wake()

    def is_dead(self, party: str) -> bool:
        with self._lock:
            return party in self._dead

    # -- observation -------------------------------------------------------------------------
    def counter(self, party: str) -> RejectionCounter:
        """Rejected envelopes per reason at ``party``."""
        return self._counters[party]

    @property
    def rejections(self) -> list[Rejection]:
        with self._lock:
            return list(self._rejections)

    @property
    def wire(self) -> list[tuple[bytes, bytes]]:
        """Every transmitted (envelope bytes, payload bytes) pair, before faults, in order."""
        with self._lock:
            return list(self._wire)

    # -- delivery ----------------------------------------------------------------------------
    def inject(self, receiver: str, envelope: bytes, payload: bytes) -> None:
        """Deliver raw wire bytes to ``receiver`` as an attacker on the network would.

        Raises the receiver's rejection (e.g. ``Replayed``) instead of only recording it.
        """
        error = self._deliver(receiver, envelope, payload)
        if error is not None:
            raise error

    def _deliver(
        self, receiver: str, envelope: bytes, payload: bytes
    ) -> RemoteProtocolError | None:
        if self.is_dead(receiver):
            return None
        try:
            self.channel(receiver)._receive_wire(envelope, payload)
        except (EnvelopeRejected, CodecError) as exc:
            if isinstance(exc, CodecError):
                _log.warning("dropped malformed message at %s: %s", receiver, exc)
                self._counters[receiver].increment("malformed")
            with self._lock:
                self._rejections.append(Rejection(receiver, exc))
            return exc
        return None

    def _transmit(self, env: Envelope, payload: bytes) -> None:
        wire = env.to_bytes()
        link = (env.sender, env.receiver)
        with self._lock:
            self._wire.append((wire, payload))
        fault = self.faults.take(env.sender, env.receiver, env.topic)
        kind = None if fault is None else fault.kind
        if kind is FaultKind.DROP:
            _log.info("fault: dropped %s -> %s on %r", env.sender, env.receiver, env.topic)
            return
        if kind is FaultKind.REORDER:
            with self._lock:
                self._held.setdefault(link, []).append((wire, payload))
            return
        if fault is not None and kind is FaultKind.TAMPER:
            wire, payload = fault.mutate(wire, payload)
        if fault is not None and kind is FaultKind.DELAY:
            timer = threading.Timer(fault.seconds, self._deliver, (env.receiver, wire, payload))
            timer.daemon = True
            timer.start()
        else:
            self._deliver(env.receiver, wire, payload)
            if kind is FaultKind.DUPLICATE:
                self._deliver(env.receiver, wire, payload)
        with self._lock:
            held = self._held.pop(link, [])
        for held_wire, held_payload in held:
            self._deliver(env.receiver, held_wire, held_payload)

    def close(self) -> None:
        """Close every channel."""
        with self._lock:
            channels = list(self._channels.values())
        for ch in channels:
            ch.close()

    def channels(self, parties: Iterable[str] | None = None) -> dict[str, MemoryChannel]:
        """``{party: channel}`` for ``parties`` (default: all)."""
        return {p: self.channel(p) for p in (self.parties if parties is None else parties)}
