"""The example protocol of the channel layer: arrays out, an encrypted sum back.

The bank holds a Paillier key pair. It sends its public key and its array ``a`` encrypted to the
retailer; the retailer adds its own array ``b`` under encryption and sends back the encrypted
sum ``Enc(sum(a + b))`` and the encrypted element-wise sums; the bank decrypts. The retailer
sees only ciphertexts and the public key; the bank sees only the sums.

The party functions take any :class:`protocols.channel.Channel`, so the same code runs over
the in-memory transport and over gRPC between processes. They return JSON-ready values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crypto.paillier import generate_keypair
from crypto.random import SeededRandom
from protocols.channel import Channel

__all__ = ["A", "B", "bank", "retailer", "KEY_BITS"]

KEY_BITS = 512  # small, explicitly insecure key: tests only
A = np.array([1.5, -2.25, 3.0, 0.0, 10.0])
B = np.array([0.5, 0.25, -1.0, 7.0, -3.5])
# The public bound both parties assume on |v| at scale 32 (values below 2^20; sums of 5 of them).
BOUND = 1 << 60


def bank(channel: Channel) -> dict[str, Any]:
    public, private = generate_keypair(
        KEY_BITS, rng=SeededRandom(7), insecure_allow_small_keys=True
    )
    channel.send("retailer", "example/public-key", public)
    channel.send("retailer", "example/a", public.encrypt(A), round=1)
    # Ciphertexts arrive without scale or bound; the bank declares the ones the protocol fixes.
    total = private.decrypt(channel.recv("retailer", "example/sum").assume(scale=32, bound=BOUND))
    elementwise = private.decrypt(
        channel.recv("retailer", "example/a+b").assume(scale=32, bound=BOUND)
    )
    return {"sum": float(np.asarray(total).reshape(-1)[0]), "a+b": elementwise.tolist()}


def retailer(channel: Channel) -> str:
    channel.recv("bank", "example/public-key")
    enc_a = channel.recv("bank", "example/a").assume(scale=32, bound=BOUND)
    enc_ab = enc_a + B
    channel.send("bank", "example/sum", enc_ab.sum(), round=1)
    channel.send("bank", "example/a+b", enc_ab, round=1)
    return "done"


def _samples() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "floats": rng.normal(size=(50, 7)),
        "ints": rng.integers(-(2**40), 2**40, size=1000),
        "flags": rng.random(33) > 0.5,
        "chunked": rng.integers(0, 255, size=5 * (1 << 20) + 3, dtype=np.uint8),
        "nested": {"ids": [b"\x00id1", b"id2"], "n": 2**80, "ok": None, "t": (1.5, "x")},
        "spooled": np.arange(9 * (1 << 20), dtype=np.float64),  # 72 MiB: above the spool limit
    }


def echo_sender(channel: Channel) -> dict[str, bool]:
    """Send one payload of each kind and check the retailer echoes every one back unchanged."""
    samples = _samples()
    for name, value in samples.items():
        channel.send("retailer", f"echo/{name}", value)
    same = {}
    for name, value in samples.items():
        back = channel.recv("retailer", f"echo/{name}")
        if isinstance(value, np.ndarray):
            same[name] = bool(back.dtype == value.dtype and np.array_equal(back, value))
        else:
            same[name] = bool(back == value)
    return same


def echo_receiver(channel: Channel) -> int:
    names = list(_samples())
    for name in names:
        channel.send("bank", f"echo/{name}", channel.recv("bank", f"echo/{name}"))
    return len(names)
