"""The one interface every protocol is written against (DESIGN.md, "The channel contract").

Protocol code never touches a socket: it calls ``send``/``recv`` on a :class:`Channel`, and a
transport (in-memory for tests and simulation, gRPC + mutual TLS for deployment) does the I/O.
Payloads are Python objects that a registered codec can encode (numpy arrays, Paillier
``EncryptedArray``, CKKS tensors, small typed messages, raw ``bytes``); the transport encodes them,
wraps them in a signed envelope and verifies and decodes them on receipt.

Ordering: messages from one sender to one receiver on one topic are delivered in send order.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any

from protocols.errors import LocalProtocolError

__all__ = ["Channel"]


class Channel(abc.ABC):
    """One party's view of the federation for one job session."""

    @property
    @abc.abstractmethod
    def party(self) -> str:
        """This party's name."""

    @property
    @abc.abstractmethod
    def peers(self) -> tuple[str, ...]:
        """The other parties of the session, sorted by name."""

    @property
    def bytes_sent(self) -> int | None:
        """Payload bytes sent so far when this channel counts them (a metering wrapper such as
        :class:`vfl.jobs.MeteredChannel` does), else ``None``."""
        return None

    @abc.abstractmethod
    def send(self, peer: str, topic: str, payload: Any, *, round: int = 0) -> None:
        """Encode, sign and send ``payload`` to ``peer`` under ``topic``."""

    @abc.abstractmethod
    def recv(self, peer: str, topic: str, *, timeout: float | None = None) -> Any:
        """Block until the next verified message from ``peer`` on ``topic`` and return it decoded.

        Raises the transport's timeout / peer-down error instead of hanging past ``timeout``.
        """

    def broadcast(
        self, topic: str, payload: Any, *, peers: Iterable[str] | None = None, round: int = 0
    ) -> None:
        """Send the same payload to every peer (or to ``peers``)."""
        for peer in self.peers if peers is None else peers:
            self.send(peer, topic, payload, round=round)

    def gather(
        self, topic: str, *, peers: Iterable[str] | None = None, timeout: float | None = None
    ) -> Mapping[str, Any]:
        """Receive one message on ``topic`` from every peer (or from ``peers``)."""
        return {
            peer: self.recv(peer, topic, timeout=timeout)
            for peer in (self.peers if peers is None else peers)
        }

    def attest(self, statement: bytes) -> bytes:
        """This party's federation signature over ``statement``, for data a protocol relays
        through a third party (:mod:`protocols.sealer`; never confused with an envelope)."""
        raise LocalProtocolError(f"{type(self).__name__} cannot sign statements")

    def check_attestation(self, signer: str, statement: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is party ``signer``'s :meth:`attest` of ``statement``."""
        raise LocalProtocolError(f"{type(self).__name__} cannot verify statements")

    def switch_session(self, session_id: str) -> None:
        """From now on seal and accept envelopes of ``session_id`` only (the run's session,
        agreed by :func:`protocols.session.agree_session`); envelopes of the bootstrap session
        and of any other session of the job are refused."""
        raise LocalProtocolError(f"{type(self).__name__} cannot switch sessions")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release transport resources. Idempotent."""
