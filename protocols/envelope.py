"""The signed envelope every message travels in, and its canonical encoding.

An :class:`Envelope` is the authenticated header of one message. The payload travels next to it
(in one piece in memory, in chunks over gRPC); the envelope carries the payload's digest
(:mod:`protocols.digest`, a SHA-256 hash list) and size, so one Ed25519 signature authenticates header and payload together and a streamed
payload never has to be held in memory to be verified.

Canonical encoding (what is signed; big-endian, every variable field length-prefixed)::

    b"VFLE" | u8 version | str job_id | str session_id | str sender | str receiver | str topic
    | i64 round | u64 seq | str codec | u64 payload_size | bytes32 payload_digest | str signer

    str    = u16 length | UTF-8 bytes      (at most MAX_FIELD_BYTES)
    bytes32 = exactly 32 bytes

``signer`` is the fingerprint (hex SHA-256 of the raw Ed25519 public key) of the signing key, so
a receiver can tell "signed by another party" from "signature does not verify". The wire form
appends ``u16 len | signature``. Protobuf is only a carrier at the gRPC edge: it is not canonical,
so the signature is always computed over :meth:`Envelope.signed_bytes`, never over protobuf bytes.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from crypto.keys import SigningKey
from protocols.digest import payload_digest
from protocols.errors import BadSignature, CodecError, LocalProtocolError, UnsupportedVersion

__all__ = [
    "ENVELOPE_VERSION",
    "MAX_FIELD_BYTES",
    "Envelope",
    "payload_digest",
    "seal",
]

ENVELOPE_VERSION = 1
MAX_FIELD_BYTES = 1024
_MAGIC = b"VFLE"
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


def _put_str(out: bytearray, name: str, value: str) -> None:
    raw = value.encode("utf-8")
    if len(raw) > MAX_FIELD_BYTES:
        raise LocalProtocolError(f"envelope field {name} is longer than {MAX_FIELD_BYTES} bytes")
    out += _U16.pack(len(raw))
    out += raw


class _Reader:
    """Strict cursor over wire bytes: every read is bounds-checked."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise CodecError("envelope is truncated")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        value: int = _U16.unpack(self.take(2))[0]
        return value

    def i64(self) -> int:
        value: int = _I64.unpack(self.take(8))[0]
        return value

    def u64(self) -> int:
        value: int = _U64.unpack(self.take(8))[0]
        return value

    def str_(self) -> str:
        n = self.u16()
        if n > MAX_FIELD_BYTES:
            raise CodecError("envelope field too long")
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError("envelope field is not UTF-8") from exc

    @property
    def position(self) -> int:
        return self._pos

    def done(self) -> bool:
        return self._pos == len(self._data)


@dataclass(frozen=True)
class Envelope:
    """The authenticated header of one message (see the module doc for the encoding)."""

    job_id: str
    session_id: str
    sender: str
    receiver: str
    topic: str
    round: int
    seq: int
    codec: str
    payload_size: int
    payload_digest: bytes
    signer: str = ""
    version: int = ENVELOPE_VERSION
    signature: bytes = b""

    def __post_init__(self) -> None:
        for name in ("job_id", "session_id", "sender", "receiver", "topic", "codec", "signer"):
            if len(getattr(self, name).encode("utf-8")) > MAX_FIELD_BYTES:
                raise LocalProtocolError(f"envelope field {name} is longer than {MAX_FIELD_BYTES}")
        if len(self.payload_digest) != 32:
            raise LocalProtocolError("payload_digest must be 32 bytes (protocols.digest)")
        if not 0 <= self.seq < 2**64 or not 0 <= self.payload_size < 2**64:
            raise LocalProtocolError("seq and payload_size must fit in an unsigned 64-bit integer")
        if not -(2**63) <= self.round < 2**63:
            raise LocalProtocolError("round must fit in a signed 64-bit integer")
        if not 0 <= self.version < 256:
            raise LocalProtocolError("version must fit in one byte")

    def signed_bytes(self) -> bytes:
        """The canonical encoding of every field except the signature: what is signed."""
        out = bytearray(_MAGIC)
        out.append(self.version)
        for name in ("job_id", "session_id", "sender", "receiver", "topic"):
            _put_str(out, name, getattr(self, name))
        out += _I64.pack(self.round)
        out += _U64.pack(self.seq)
        _put_str(out, "codec", self.codec)
        out += _U64.pack(self.payload_size)
        out += self.payload_digest
        _put_str(out, "signer", self.signer)
        return bytes(out)

    def to_bytes(self) -> bytes:
        """Wire form: the canonical encoding followed by the length-prefixed signature."""
        return self.signed_bytes() + _U16.pack(len(self.signature)) + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """Parse the wire form strictly (no trailing bytes); raise ``CodecError`` if malformed."""
        reader = _Reader(bytes(data))
        if reader.take(4) != _MAGIC:
            raise CodecError("not an envelope (bad magic)")
        version = reader.u8()
        if version != ENVELOPE_VERSION:
            raise UnsupportedVersion(f"envelope version {version} is not supported")
        job_id, session_id, sender, receiver, topic = (reader.str_() for _ in range(5))
        round_, seq = reader.i64(), reader.u64()
        codec = reader.str_()
        size = reader.u64()
        digest = reader.take(32)
        signer = reader.str_()
        signature = reader.take(reader.u16())
        if not reader.done():
            raise CodecError("envelope has trailing bytes")
        return cls(
            job_id=job_id,
            session_id=session_id,
            sender=sender,
            receiver=receiver,
            topic=topic,
            round=round_,
            seq=seq,
            codec=codec,
            payload_size=size,
            payload_digest=digest,
            signer=signer,
            version=version,
            signature=signature,
        )

    def signed_with(self, key: SigningKey) -> Envelope:
        """A copy with ``signer`` set to ``key``'s fingerprint and signed with ``key``."""
        unsigned = dataclasses.replace(self, signer=key.fingerprint, signature=b"")
        return dataclasses.replace(unsigned, signature=key.sign(unsigned.signed_bytes()))

    def check_payload(self, *, digest: bytes, size: int) -> None:
        """Raise :class:`BadSignature` unless the received payload matches the signed digest."""
        if size != self.payload_size or digest != self.payload_digest:
            raise BadSignature(
                f"payload from {self.sender!r} on {self.topic!r} does not match its signed digest"
            )


def seal(
    *,
    key: SigningKey,
    job_id: str,
    session_id: str,
    sender: str,
    receiver: str,
    topic: str,
    round: int,
    seq: int,
    codec: str,
    parts: Iterable[bytes | bytearray | memoryview],
) -> Envelope:
    """Build and sign the envelope for a payload given as byte ``parts``."""
    parts = list(parts)
    return Envelope(
        job_id=job_id,
        session_id=session_id,
        sender=sender,
        receiver=receiver,
        topic=topic,
        round=round,
        seq=seq,
        codec=codec,
        payload_size=sum(memoryview(p).nbytes for p in parts),
        payload_digest=payload_digest(parts),
    ).signed_with(key)
