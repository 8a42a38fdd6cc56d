"""Envelope canonical encoding, protobuf serde and the verifier's sequence rules."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.keys import SigningKey
from crypto.random import SeededRandom
from protocols.digest import payload_digest
from protocols.envelope import Envelope, seal
from protocols.errors import (
    BadSignature,
    CodecError,
    OutOfOrder,
    Replayed,
    UnsupportedVersion,
)
from protocols.serde import envelope_from_proto, envelope_to_proto
from protocols.verify import Verifier

KEY = SigningKey.generate(rng=SeededRandom(0))
OTHER = SigningKey.generate(rng=SeededRandom(1))

names = st.text(min_size=1, max_size=30)
envelopes = st.builds(
    Envelope,
    job_id=names,
    session_id=st.text(max_size=10),
    sender=names,
    receiver=names,
    topic=names,
    round=st.integers(-(2**63), 2**63 - 1),
    seq=st.integers(0, 2**64 - 1),
    codec=names,
    payload_size=st.integers(0, 2**64 - 1),
    payload_digest=st.binary(min_size=32, max_size=32),
)


@given(envelopes)
def test_wire_and_protobuf_round_trip(env: Envelope) -> None:
    signed = env.signed_with(KEY)
    assert Envelope.from_bytes(signed.to_bytes()) == signed
    assert envelope_from_proto(envelope_to_proto(signed)) == signed
    KEY.verify_key.verify(signed.signature, signed.signed_bytes())


@given(envelopes, envelopes)
def test_canonical_encoding_is_injective(a: Envelope, b: Envelope) -> None:
    assert (a.signed_bytes() == b.signed_bytes()) == (a == b)


def test_fields_cannot_be_shifted_between_neighbours() -> None:
    base = dict(round=0, seq=1, codec="c", payload_size=0, payload_digest=bytes(32))
    a = Envelope(job_id="ab", session_id="", sender="c", receiver="d", topic="t", **base)  # type: ignore[arg-type]
    b = Envelope(job_id="a", session_id="b", sender="c", receiver="d", topic="t", **base)  # type: ignore[arg-type]
    assert a.signed_bytes() != b.signed_bytes()


def test_malformed_wire_bytes() -> None:
    wire = seal(
        key=KEY,
        job_id="j",
        session_id="",
        sender="a",
        receiver="b",
        topic="t",
        round=0,
        seq=1,
        codec="bytes",
        parts=[b"\x01x"],
    ).to_bytes()
    with pytest.raises(CodecError):
        Envelope.from_bytes(wire[:-1])
    with pytest.raises(CodecError):
        Envelope.from_bytes(wire + b"\x00")
    with pytest.raises(CodecError):
        Envelope.from_bytes(b"XXXX" + wire[4:])
    with pytest.raises(UnsupportedVersion):
        Envelope.from_bytes(wire[:4] + b"\x09" + wire[5:])


def _env(seq: int, payload: bytes = b"\x01p") -> tuple[Envelope, bytes]:
    env = seal(
        key=KEY,
        job_id="j",
        session_id="s",
        sender="a",
        receiver="b",
        topic="t",
        round=0,
        seq=seq,
        codec="bytes",
        parts=[payload],
    )
    return env, payload


def _accept(verifier: Verifier, env: Envelope, payload: bytes) -> None:
    verifier.accept(env, digest=payload_digest([payload]), size=len(payload))


def test_sequence_rules() -> None:
    verifier = Verifier(party="b", job_id="j", session_id="s", keys={"a": KEY.verify_key})
    _accept(verifier, *_env(1))
    _accept(verifier, *_env(2))
    with pytest.raises(Replayed):
        _accept(verifier, *_env(2))
    _accept(verifier, *_env(5))  # a gap is allowed (3 and 4 were lost or are late)
    with pytest.raises(OutOfOrder):
        _accept(verifier, *_env(3))
    with pytest.raises(OutOfOrder):
        _accept(verifier, *_env(4))
    with pytest.raises(Replayed):
        _accept(verifier, *_env(1))
    counts = verifier.counter.counts()
    assert counts["replayed"] == 2 and counts["out_of_order"] == 2
    assert verifier.counter.total == 4


def test_payload_must_match_signed_digest() -> None:
    verifier = Verifier(party="b", job_id="j", session_id="s", keys={"a": KEY.verify_key})
    env, _ = _env(1, b"\x01good")
    with pytest.raises(BadSignature):
        _accept(verifier, env, b"\x01evil")
    _accept(verifier, env, b"\x01good")  # the rejected attempt did not consume the seq


def test_signature_covers_every_field() -> None:
    verifier = Verifier(party="b", job_id="j", session_id="s", keys={"a": KEY.verify_key})
    env, payload = _env(1)
    altered = [
        dataclasses.replace(env, topic="u"),
        dataclasses.replace(env, round=7),
        dataclasses.replace(env, codec="struct"),
        dataclasses.replace(env, seq=2),
        dataclasses.replace(env, session_id="s", job_id="j", receiver="b", payload_size=3),
    ]
    for forged in altered:
        with pytest.raises(BadSignature):
            _accept(verifier, forged, payload)
