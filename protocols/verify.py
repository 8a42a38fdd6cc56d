"""Verification of envelopes on receipt: pure, transport independent.

Order of checks (the first failure wins; each raises its own :class:`EnvelopeRejected`):

1. version       -- :class:`UnsupportedVersion`
2. sender known  -- :class:`UnknownSender` (no public key for the claimed sender)
3. signer        -- :class:`SignerMismatch` (``signer`` is not the sender's key fingerprint)
4. signature     -- :class:`BadSignature` (Ed25519 over :meth:`Envelope.signed_bytes`)
5. receiver      -- :class:`WrongReceiver`
6. job, session  -- :class:`ForeignJob`
7. sequence      -- :class:`Replayed` / :class:`OutOfOrder`
8. payload       -- :class:`BadSignature` when the payload does not match the signed digest

Signature before content checks, so every later verdict is about authentic fields. Sequence
numbers are strictly increasing per (sender, receiver, session): a number already accepted is
*replayed*; a number below the highest accepted that was skipped (never seen) arrived *out of
order*. Gaps are allowed (a dropped message does not block the ones after it) and remembered,
so a late arrival is still told apart from a replay.

Every rejection is logged on the ``protocols.verify`` logger and counted in a
:class:`RejectionCounter`; a rejected envelope is never delivered to protocol code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping

from crypto.errors import InvalidSignature
from crypto.keys import VerifyKey
from protocols.envelope import ENVELOPE_VERSION, Envelope
from protocols.errors import (
    REJECTION_REASONS,
    BadSignature,
    EnvelopeRejected,
    ForeignJob,
    OutOfOrder,
    Replayed,
    SignerMismatch,
    UnknownSender,
    UnsupportedVersion,
    WrongReceiver,
)

__all__ = ["RejectionCounter", "Verifier", "check_authentic", "log_rejection"]

_log = logging.getLogger("protocols.verify")
_MAX_GAPS = 4096


def check_authentic(env: Envelope, keys: Mapping[str, VerifyKey]) -> EnvelopeRejected | None:
    """Checks 1-4 (version, sender known, signer, signature); the error, or ``None`` if authentic."""
    if env.version != ENVELOPE_VERSION:
        return UnsupportedVersion(f"envelope version {env.version} is not supported")
    key = keys.get(env.sender)
    if key is None:
        return UnknownSender(f"sender {env.sender!r} is not a party of this federation")
    if not env.signature:
        return BadSignature(f"envelope from {env.sender!r} is unsigned")
    if env.signer != key.fingerprint:
        owner = next((n for n, k in keys.items() if k.fingerprint == env.signer), None)
        by = f"party {owner!r}" if owner else "an unknown key"
        return SignerMismatch(f"envelope claiming sender {env.sender!r} was signed by {by}")
    try:
        key.verify(env.signature, env.signed_bytes())
    except InvalidSignature:
        return BadSignature(f"signature of envelope from {env.sender!r} does not verify")
    return None


def log_rejection(party: str, error: EnvelopeRejected, env: Envelope) -> None:
    """Log one rejection on the ``protocols.verify`` logger."""
    _log.warning(
        "rejected envelope at %s: %s (sender=%r topic=%r seq=%d): %s",
        party,
        error.reason,
        env.sender,
        env.topic,
        env.seq,
        error,
    )


class RejectionCounter:
    """Thread-safe count of rejected envelopes per reason (a metrics counter)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {cls.reason: 0 for cls in REJECTION_REASONS}

    def increment(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def __getitem__(self, reason: str) -> int:
        with self._lock:
            return self._counts.get(reason, 0)

    def counts(self) -> dict[str, int]:
        """A snapshot ``{reason: count}`` including zeros."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


class _SeqState:
    """Highest accepted sequence number and the skipped numbers below it."""

    __slots__ = ("highest", "gaps")

    def __init__(self) -> None:
        self.highest = -1
        self.gaps: list[tuple[int, int]] = []  # half-open ranges [lo, hi) never seen

    def classify(self, seq: int) -> type[EnvelopeRejected] | None:
        if seq > self.highest:
            return None
        for lo, hi in self.gaps:
            if lo <= seq < hi:
                return OutOfOrder
        return Replayed

    def accept(self, seq: int) -> None:
        if seq > self.highest:
            if seq > self.highest + 1:
                self.gaps.append((self.highest + 1, seq))
                del self.gaps[:-_MAX_GAPS]
            self.highest = seq


class Verifier:
    """Verifies envelopes addressed to ``party`` in one job session.

    ``keys`` maps every party name of the federation to its Ed25519 public key.
    """

    def __init__(
        self,
        *,
        party: str,
        job_id: str,
        session_id: str,
        keys: Mapping[str, VerifyKey],
        counter: RejectionCounter | None = None,
    ) -> None:
        self.party = party
        self.job_id = job_id
        self.session_id = session_id
        self._keys = dict(keys)
        self.counter = counter if counter is not None else RejectionCounter()
        self._lock = threading.Lock()
        self._seq: dict[tuple[str, str, str], _SeqState] = {}

    def _reject(self, error: EnvelopeRejected, env: Envelope) -> EnvelopeRejected:
        self.counter.increment(error.reason)
        log_rejection(self.party, error, env)
        return error

    def reject(self, error: EnvelopeRejected, env: Envelope) -> EnvelopeRejected:
        """Count and log a rejection found outside this verifier (e.g. a TLS identity check)."""
        return self._reject(error, env)

    def _check_content(self, env: Envelope) -> EnvelopeRejected | None:
        """Checks 5-7 on an authentic envelope (call with the lock held)."""
        if env.receiver != self.party:
            return WrongReceiver(f"envelope for {env.receiver!r} delivered to {self.party!r}")
        if env.job_id != self.job_id or env.session_id != self.session_id:
            return ForeignJob(
                f"envelope from job {env.job_id!r} session {env.session_id!r}, "
                f"expected job {self.job_id!r} session {self.session_id!r}"
            )
        return self._check_seq(env)

    def _check_seq(self, env: Envelope) -> EnvelopeRejected | None:
        state = self._seq.get((env.sender, env.receiver, env.session_id))
        kind = None if state is None else state.classify(env.seq)
        if kind is Replayed:
            return Replayed(f"envelope seq {env.seq} from {env.sender!r} was already accepted")
        if kind is OutOfOrder:
            return OutOfOrder(f"envelope seq {env.seq} from {env.sender!r} arrived out of order")
        return None

    def verify_header(self, env: Envelope) -> None:
        """Checks 1-7 without recording the sequence number (e.g. before streaming a payload)."""
        error = check_authentic(env, self._keys)
        if error is None:
            with self._lock:
                error = self._check_content(env)
        if error is not None:
            raise self._reject(error, env)

    def accept(
        self, env: Envelope, *, digest: bytes, size: int, header_verified: bool = False
    ) -> None:
        """All checks, then record ``env.seq`` as accepted; after this the message may be delivered.

        ``digest``/``size`` are the digest (:mod:`protocols.digest`) and length of the payload
        as received. ``header_verified=True`` skips the signature check when
        :meth:`verify_header` already passed for this very envelope (checks 5-7 run again).
        """
        error = None if header_verified else check_authentic(env, self._keys)
        with self._lock:
            if error is None:
                error = self._check_content(env)
            if error is None:
                try:
                    env.check_payload(digest=digest, size=size)
                except BadSignature as exc:
                    error = exc
            if error is None:
                key = (env.sender, env.receiver, env.session_id)
                self._seq.setdefault(key, _SeqState()).accept(env.seq)
                return
        raise self._reject(error, env)
