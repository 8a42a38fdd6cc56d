"""Party functions for the gRPC integration tests (run in their own processes)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from protocols.channel import Channel
from protocols.errors import PeerDown
from protocols.session import agree_session

__all__ = [
    "BIG_ELEMENTS",
    "agree_then_receive",
    "collect_attacks",
    "hang_after_ready",
    "recv_big",
    "send_big",
    "serve_until_done",
    "wait_for_dead_peer",
]

BIG_ELEMENTS = 1 << 27  # int64: 1 GiB


def collect_attacks(channel: Channel) -> list[Any]:
    """Receive on topic "attack" from the retailer until "done"; return what was delivered."""
    got: list[Any] = []
    while not got or got[-1] != "done":
        got.append(channel.recv("retailer", "attack", timeout=90))
    return got


def agree_then_receive(channel: Channel) -> dict[str, Any]:
    """Agree on this run's session with the bank, then return the first "data" message."""
    session = agree_session(channel, ["bank"], timeout=90)
    return {"session": session, "value": channel.recv("bank", "data", timeout=90)}


def serve_until_done(channel: Channel) -> str:
    """Keep the node up until the retailer says "done"."""
    return str(channel.recv("retailer", "done", timeout=90))


def hang_after_ready(channel: Channel) -> None:
    channel.send("retailer", "ready", 1)
    print("READY", flush=True)
    time.sleep(600)


def wait_for_dead_peer(channel: Channel) -> dict[str, Any]:
    channel.recv("bank", "ready", timeout=60)
    start = time.monotonic()
    try:
        channel.recv("bank", "never", timeout=100)
    except PeerDown as exc:
        return {"error": "PeerDown", "message": str(exc), "seconds": time.monotonic() - start}
    return {"error": None}


def send_big(channel: Channel) -> str:
    channel.send("retailer", "big", np.arange(BIG_ELEMENTS, dtype=np.int64))
    channel.recv("retailer", "got-it", timeout=600)
    return "sent"


def _rss_kib() -> int:
    from tests.protocols._grpc_party import memory_kib

    return memory_kib("VmRSS")


def recv_big(channel: Channel) -> dict[str, Any]:
    baseline = _rss_kib()
    array = channel.recv("bank", "big", timeout=900)
    samples = [0, 1, 12_345_678, BIG_ELEMENTS // 2, BIG_ELEMENTS - 1]
    ok = all(int(array[i]) == i for i in samples)
    channel.send("bank", "got-it", True)
    from tests.protocols._grpc_party import memory_kib

    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "samples_ok": ok,
        "baseline_kib": baseline,
        "peak_kib": memory_kib("VmHWM"),
    }
