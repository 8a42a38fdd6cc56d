"""The gRPC ``PartyService``: receive a chunked, signed message, verify it, deliver it.

Order on receipt: parse envelope -> find the open session (else ``UNAVAILABLE``, so the sender
retries until the session opens) -> verify the envelope (checks 1-7 of :mod:`protocols.verify`)
-> TLS client certificate CN must equal the sender -> stream the payload (spooled to a temp
file above a threshold), hashing it -> digest/size and sequence check -> decode -> deliver.
Every rejection is logged and counted by the session's verifier and returned to the sender as
``PERMISSION_DENIED`` with details ``rejected:<reason>: <message>``; malformed payloads as
``INVALID_ARGUMENT`` with ``codec: <message>``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import grpc

from crypto.keys import VerifyKey
from protocols._pb import pb, pb_grpc
from protocols.digest import PayloadHasher
from protocols.envelope import Envelope
from protocols.errors import (
    BadSignature,
    CodecError,
    EnvelopeRejected,
    ForeignJob,
    PeerIdentityMismatch,
)
from protocols.grpc._session import Session
from protocols.serde import envelope_from_proto
from protocols.verify import check_authentic, log_rejection

__all__ = ["PartyServicer", "SPOOL_THRESHOLD", "peer_common_name"]

_log = logging.getLogger("protocols.grpc")
SPOOL_THRESHOLD = 64 << 20  # payloads above 64 MiB are spooled to disk


def peer_common_name(context: grpc.ServicerContext) -> str | None:
    """The CN of the TLS client certificate of this call, or ``None`` without TLS."""
    auth: Mapping[str, list[bytes]] = context.auth_context()
    names = auth.get("x509_common_name") or []
    return names[0].decode("utf-8", errors="replace") if names else None


class PartyServicer(pb_grpc.PartyServiceServicer):  # type: ignore[misc]
    """Receives messages for the sessions a node has open."""

    def __init__(
        self,
        *,
        party: str,
        keys: Mapping[str, VerifyKey],
        sessions: Callable[[str, str], Session | None],
        run_session: Callable[[str], Session | None] = lambda job_id: None,
        spool_dir: Path | None = None,
        spool_threshold: int = SPOOL_THRESHOLD,
        require_tls_identity: bool = True,
        on_delivered: Callable[[str], None] = lambda sender: None,
    ) -> None:
        self._party = party
        self._keys = dict(keys)
        self._sessions = sessions
        self._run_session = run_session
        self._spool_dir = spool_dir
        self._spool_threshold = spool_threshold
        self._require_tls_identity = require_tls_identity
        self._on_delivered = on_delivered

    @staticmethod
    def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
        context.abort(code, details)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _abort_rejected(self, context: grpc.ServicerContext, error: EnvelopeRejected) -> NoReturn:
        self._abort(context, grpc.StatusCode.PERMISSION_DENIED, f"rejected:{error.reason}: {error}")

    def Send(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:  # noqa: N802
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("kind") != "envelope":
            self._abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                "codec: stream must start with an envelope",
            )
        try:
            env = envelope_from_proto(first.envelope)
        except CodecError as exc:
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"codec: {exc}")
        session = self._sessions(env.job_id, env.session_id)
        if session is None:
            error = check_authentic(env, self._keys)
            if error is not None:
                log_rejection(self._party, error, env)
                self._abort_rejected(context, error)
            run = self._run_session(env.job_id)
            if run is not None:  # this run's session is agreed: any other one is over
                self._abort_rejected(context, run.verifier.reject(ForeignJob(
                    f"envelope of session {env.session_id!r} of job {env.job_id!r}; this run "
                    f"of the job is session {run.verifier.session_id!r} (a previous run's?)"
                ), env))  # fmt: skip
            self._abort(
                context,
                grpc.StatusCode.UNAVAILABLE,
                f"session-not-open: {self._party} has no open session "
                f"{env.job_id!r}/{env.session_id!r}",
            )
        verifier = session.verifier
        try:
            verifier.verify_header(env)
        except EnvelopeRejected as exc:
            self._abort_rejected(context, exc)
        if self._require_tls_identity:
            cn = peer_common_name(context)
            if cn != env.sender:
                error = verifier.reject(
                    PeerIdentityMismatch(
                        f"envelope from {env.sender!r} came over the TLS identity {cn!r}"
                    ),
                    env,
                )
                self._abort_rejected(context, error)
        refused = session.admit(env.sender, env.topic)
        if refused is not None:
            self._abort_rejected(context, verifier.reject(refused, env))
        limit = session.limits.max_payload_bytes
        if env.payload_size > limit:  # on the signed size: before any byte is read or spooled
            verifier.counter.increment("malformed")
            self._abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"codec: payload of {env.payload_size} bytes on {env.topic!r} exceeds the "
                f"receiver's limit of {limit} bytes",
            )
        spooled = env.payload_size > self._spool_threshold
        try:
            value = self._receive(env, request_iterator, session, spooled=spooled)
        except EnvelopeRejected as exc:
            self._abort_rejected(context, exc)
        except CodecError as exc:
            _log.warning("malformed payload at %s from %s: %s", self._party, env.sender, exc)
            verifier.counter.increment("malformed")
            self._abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"codec: {exc}")
        session.put(env.sender, env.topic, value)
        self._on_delivered(env.sender)
        return pb.Ack(seq=env.seq, received_bytes=env.payload_size)

    def _receive(
        self, env: Envelope, chunks: Iterator[Any], session: Session, *, spooled: bool
    ) -> Any:
        digest = PayloadHasher()
        size = 0

        def checked() -> Iterator[bytes]:
            """The chunks' bytes, hashed and counted; more than the envelope declared is refused."""
            nonlocal size
            for chunk in chunks:
                data: bytes = chunk.data
                size += len(data)
                if size > env.payload_size:
                    raise session.verifier.reject(self._oversize(env), env)
                digest.update(data)
                yield data

        if not spooled:
            pieces = list(checked())
            session.verifier.accept(env, digest=digest.digest(), size=size, header_verified=True)
            # The pieces go to the codec as they are: it copies them once, into the result
            # (joining them first would copy the payload twice).
            return session.codecs.decode_parts(env.codec, pieces, session.codec_context)
        fd, name = tempfile.mkstemp(prefix="vfl-spool-", dir=self._spool_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as fh:
                for data in checked():
                    fh.write(data)
            session.verifier.accept(env, digest=digest.digest(), size=size, header_verified=True)
            # An ndarray decodes to a memory map of this file; unlinking keeps the mapping.
            return session.codecs.decode_file(env.codec, path, session.codec_context)
        finally:
            with contextlib.suppress(OSError):
                path.unlink()

    @staticmethod
    def _oversize(env: Envelope) -> BadSignature:
        return BadSignature(f"payload from {env.sender!r} is longer than its signed size")
