"""``deliver``: retries with backoff on UNAVAILABLE, and gRPC statuses mapped to our errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from crypto.keys import SigningKey
from protocols.envelope import seal
from protocols.errors import (
    BadSignature,
    ChannelTimeout,
    CodecError,
    ForeignJob,
    PeerDown,
    TransportError,
)
from protocols.grpc import deliver

ENV = seal(
    key=SigningKey.generate(),
    job_id="j",
    session_id="",
    sender="a",
    receiver="b",
    topic="t",
    round=0,
    seq=1,
    codec="bytes",
    parts=[b"\x01data"],
)


class FakeError(grpc.RpcError):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FakeStub:
    """Answers each Send with the next scripted outcome (an error or ``None`` for success)."""

    def __init__(self, outcomes: list[FakeError | None]) -> None:
        self.outcomes = outcomes
        self.calls = 0

    def Send(self, chunks: Iterator[Any], timeout: float) -> None:  # noqa: N802
        first = next(chunks)
        assert first.envelope.seq == 1
        assert b"".join(c.data for c in chunks) == b"\x01data"
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if outcome is not None:
            raise outcome


UNAVAILABLE = FakeError(grpc.StatusCode.UNAVAILABLE, "connection refused")


def test_unavailable_is_retried_until_success() -> None:
    stub = FakeStub([UNAVAILABLE, UNAVAILABLE, None])
    deliver(stub, "b", ENV, [b"\x01data"], timeout=10)
    assert stub.calls == 3


def test_replayed_after_a_retry_means_an_earlier_attempt_arrived() -> None:
    replayed = FakeError(grpc.StatusCode.PERMISSION_DENIED, "rejected:replayed: seq 1")
    stub = FakeStub([UNAVAILABLE, replayed])
    deliver(stub, "b", ENV, [b"\x01data"], timeout=10)
    assert stub.calls == 2


@pytest.mark.parametrize(
    "error,expected",
    [
        (FakeError(grpc.StatusCode.PERMISSION_DENIED, "rejected:bad_signature: x"), BadSignature),
        (FakeError(grpc.StatusCode.INVALID_ARGUMENT, "codec: bad array"), CodecError),
        (FakeError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline"), ChannelTimeout),
        (FakeError(grpc.StatusCode.INTERNAL, "boom"), TransportError),
    ],
)
def test_statuses_map_to_errors(error: FakeError, expected: type[Exception]) -> None:
    stub = FakeStub([error])
    with pytest.raises(expected):
        deliver(stub, "b", ENV, [b"\x01data"], timeout=10)
    assert stub.calls == 1


def test_unreachable_peer_and_unopened_session_give_up_at_the_deadline() -> None:
    with pytest.raises(PeerDown, match="unreachable"):
        deliver(FakeStub([UNAVAILABLE]), "b", ENV, [b"\x01data"], timeout=0.3)
    not_open = FakeError(grpc.StatusCode.UNAVAILABLE, "session-not-open: b has no open session")
    with pytest.raises(ForeignJob):
        deliver(FakeStub([not_open]), "b", ENV, [b"\x01data"], timeout=0.3)


def test_a_peer_known_to_be_down_fails_at_once() -> None:
    stub = FakeStub([None])
    with pytest.raises(PeerDown, match="heartbeats"):
        deliver(
            stub, "b", ENV, [b"\x01data"], timeout=10, down_reason=lambda p: "3 heartbeats failed"
        )
    assert stub.calls == 0
