"""``vfl bench channel``: throughput of the secure channel against plain gRPC, same run.

Two OS processes on 127.0.0.1: this one sends, a child process receives. Secure stack: a
:class:`protocols.grpc.PartyNode` on each side, mutual TLS 1.3, the payload encoded,
Ed25519-signed (hash-list digest), streamed in chunks of ``CHUNK_BYTES`` (256 KiB), verified,
hashed, decoded and queued at the receiver; ``send`` returns when the receiver's node
acknowledges exactly that (the gRPC response comes after verification and delivery), which is
what is timed. Baseline: plain gRPC without TLS -- the same protobuf chunk stream of the raw
bytes to a server in the child process that reads it and assembles the payload into one
``bytes`` object (the copy every receiver of a chunked payload needs; the secure node does the
same single copy) -- no envelope, signature, hashing, checks or decoding. The two alternate
within every repetition, so load from other work on a shared machine disturbs both alike;
the ratio is the stable number.
"""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

import protocols.grpc
from protocols._pb import pb, pb_grpc
from protocols.config import load_federation
from protocols.pki import init_federation
from vfl.bench.common import machine_info

__all__ = ["add_arguments", "run"]

BASELINE = (
    "plain gRPC, no TLS: the same protobuf chunk stream (CHUNK_BYTES), assembled into one bytes "
    "object at the receiver; no signing, hashing, checks or decoding"
)
_OPTIONS = [
    ("grpc.max_receive_message_length", 8 << 20),
    ("grpc.max_send_message_length", 8 << 20),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes-mb", default="1,64", help="comma-separated payload sizes in MB (default 1,64)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs per size")


class _PlainSink(pb_grpc.PartyServiceServicer):  # type: ignore[misc]
    """The baseline server: reads every chunk and assembles the payload, nothing else.

    Assembling is the one copy any receiver needs to hand a chunked payload over as one
    ``bytes`` object; the secure node does exactly that copy too (``decode_parts``), so the
    comparison measures what security adds: no signature, hashing, checks or decoding here.
    """

    def Send(self, request_iterator: Iterator[Any], context: Any) -> Any:  # noqa: N802
        pieces = [chunk.data for chunk in request_iterator]
        payload = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        return pb.Ack(seq=0, received_bytes=len(payload))


def _plain_chunks(payload: bytes) -> Iterator[Any]:
    view = memoryview(payload)
    for start in range(0, len(view), protocols.grpc.CHUNK_BYTES):
        yield pb.Chunk(data=bytes(view[start : start + protocols.grpc.CHUNK_BYTES]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _best_interleaved(fns: list[Any], repeat: int) -> list[float]:
    """Best time of each function over ``repeat`` rounds, the functions alternating within a
    round so that other load on a shared machine hits the secure path and the baseline alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _receiver(config_path: str) -> None:
    """The receiving process: the retailer's node plus the plain-gRPC sink, until "stop"."""
    config = load_federation(config_path)
    node = protocols.grpc.PartyNode(config, "retailer").start()
    plain = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_OPTIONS)
    pb_grpc.add_PartyServiceServicer_to_server(_PlainSink(), plain)
    plain_port = plain.add_insecure_port("127.0.0.1:0")
    plain.start()
    channel = node.channel("bench", default_timeout=600)
    print(json.dumps({"plain_port": plain_port}), flush=True)
    try:
        while True:
            message = channel.recv("bank", "bench")
            if message == b"stop":
                break
    finally:
        channel.close()
        plain.stop(0)
        node.stop(grace=0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [float(s) for s in args.sizes_mb.split(",") if s.strip()]
    if not sizes or any(s <= 0 for s in sizes) or args.repeat < 1:
        raise ValueError("--sizes-mb must list positive sizes and --repeat must be >= 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="vfl-bench-channel-") as tmp:
        addresses = {p: f"127.0.0.1:{_free_port()}" for p in ("bank", "retailer")}
        path = init_federation(["bank", "retailer"], Path(tmp), addresses=addresses)
        config = load_federation(path)
        receiver = subprocess.Popen(
            [sys.executable, "-m", "vfl.bench.channel", "--receiver", str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        sender = protocols.grpc.PartyNode(config, "bank").start()
        try:
            assert receiver.stdout is not None
            line = receiver.stdout.readline()
            if not line:
                raise RuntimeError("the benchmark's receiver process did not start")
            plain_port = json.loads(line)["plain_port"]
            out_ch = sender.channel("bench", default_timeout=600)
            plain_stub = pb_grpc.PartyServiceStub(
                grpc.insecure_channel(f"127.0.0.1:{plain_port}", options=_OPTIONS)
            )
            for size_mb in sizes:
                payload = os.urandom(int(size_mb * 1e6))

                def secure(payload: bytes = payload) -> None:
                    # Returns once the receiver has verified, decoded and queued the message.
                    out_ch.send("retailer", "bench", payload)

                def baseline(payload: bytes = payload) -> None:
                    plain_stub.Send(_plain_chunks(payload), timeout=600)

                secure()  # warm up connections
                baseline()
                t_secure, t_plain = _best_interleaved([secure, baseline], args.repeat)
                results.append(
                    {
                        "payload_mb": size_mb,
                        "secure_mb_per_s": round(size_mb / t_secure, 1),
                        "plain_grpc_mb_per_s": round(size_mb / t_plain, 1),
                        "secure_seconds": round(t_secure, 4),
                        "plain_grpc_seconds": round(t_plain, 4),
                        "ratio_secure_vs_plain": round(t_plain / t_secure, 3),
                    }
                )
            out_ch.send("retailer", "bench", b"stop")
            receiver.wait(timeout=30)
            out_ch.close()
        finally:
            if receiver.poll() is None:
                receiver.kill()
            receiver.wait()
            sender.stop(grace=0)
    return {
        "benchmark": "channel",
        "machine": machine_info(),
        "secure_stack": "mutual TLS 1.3 + Ed25519-signed envelope + SHA-256 hash list + "
        f"{protocols.grpc.CHUNK_BYTES >> 10} KiB chunks + verify/decode/deliver at the receiver "
        "before the gRPC response",
        "baseline": BASELINE,
        "target_ratio": 0.5,
        "results": results,
        "repeat": args.repeat,
        "note": "sender and receiver are two OS processes on 127.0.0.1; figures taken on a shared "
        "machine are disturbed by other load",
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        _receiver(sys.argv[2])
