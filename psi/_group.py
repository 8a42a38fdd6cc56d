"""The group arithmetic of ECDH-PSI: X25519 on hashed u-coordinates (pure functions).

Hash into the group (docs/protocols/psi.md, "Why twist points are safe")::

    u(id) = SHA-512/256( len(D) || D || len(salt) || salt || id )  with bit 255 cleared

where ``D`` is :data:`DOMAIN` and ``salt`` the per-session salt agreed by all parties. Every
``u`` in GF(2^255 - 19) is the x-coordinate of a point on Curve25519 or on its quadratic twist;
nobody knows its discrete logarithm with respect to any fixed point (unlike ``H(id) * G``).

Blinding is the X25519 function of RFC 7748, section 5::

    X25519(k, u) = x([clamp(k)] * P_u)

computed with the x-only Montgomery ladder, which is correct for points on the curve and on the
twist alike, so ``X25519(a, X25519(b, u)) == X25519(b, X25519(a, u))`` for every ``u``: the
commutativity ECDH-PSI needs (Huberman, Franklin, Hogg 1999; Meadows 1986). Clamped scalars
are multiples of 8, which kills every low-order component; an input of small order gives the
all-zero output, which libsodium (and OpenSSL, the fallback backend) rejects and we report.

These functions run inside worker processes, so they take and return ``bytes`` (cheap to move
between processes) and import nothing heavy.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from psi.errors import PSIProtocolError, PSIUsageError

_sodium_scalarmult: Callable[[bytes, bytes], bytes] | None
try:  # libsodium's X25519: same RFC 7748 function, ~7% less CPU per call than cryptography's
    from nacl.bindings import crypto_scalarmult as _sodium_scalarmult
except ImportError:  # pragma: no cover - PyNaCl is a dependency; cryptography is the fallback
    _sodium_scalarmult = None

__all__ = [
    "DOMAIN",
    "POINT_BYTES",
    "STATISTICAL_BITS",
    "hash_prefix",
    "hash_to_u",
    "clamp_scalar",
    "hash_and_blind",
    "blind",
    "blind_truncate",
    "tag_bytes",
    "BACKEND",
    "multiplier",
]

DOMAIN = b"vfl-engine/psi/x25519-hashed-u/v1"
POINT_BYTES = 32
#: The false-match rate over the whole comparison is at most 2^-STATISTICAL_BITS.
STATISTICAL_BITS = 40


def hash_prefix(salt: bytes) -> bytes:
    """The length-prefixed ``D || salt`` that every hashed id starts with."""
    if not 16 <= len(salt) <= 255:
        raise PSIUsageError("session salt must be 16..255 bytes")
    return bytes([len(DOMAIN)]) + DOMAIN + bytes([len(salt)]) + salt


def hash_to_u(prefix: bytes, item: bytes) -> bytes:
    """u-coordinate of one id: SHA-512/256(prefix || id), bit 255 cleared (little-endian)."""
    digest = bytearray(hashlib.new("sha512_256", prefix + item).digest())
    digest[31] &= 0x7F
    return bytes(digest)


def clamp_scalar(raw: bytes) -> bytes:
    """RFC 7748 clamping: clear bits 0-2 and 255, set bit 254 (X25519 does this anyway)."""
    if len(raw) != 32:
        raise PSIUsageError("an X25519 scalar is 32 bytes")
    k = bytearray(raw)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


#: Which X25519 implementation blinds: ``"libsodium"`` (PyNaCl) or ``"openssl"`` (cryptography).
BACKEND = "libsodium" if _sodium_scalarmult is not None else "openssl"


def multiplier(scalar: bytes, *, backend: str = BACKEND) -> Callable[[bytes], bytes]:
    """``u -> X25519(scalar, u)`` (RFC 7748). Both backends clamp the scalar, mask bit 255 of
    ``u`` and fail (``ValueError`` / ``RuntimeError``) instead of returning the all-zero output of a
    small-order input; libsodium also refuses the known small-order encodings up front."""
    if backend == "libsodium" and _sodium_scalarmult is not None:
        mult = _sodium_scalarmult
        return lambda u: mult(scalar, u)
    if backend not in ("libsodium", "openssl"):
        raise PSIUsageError(f"unknown X25519 backend {backend!r}")
    exchange = X25519PrivateKey.from_private_bytes(scalar).exchange
    load = X25519PublicKey.from_public_bytes
    return lambda u: exchange(load(u))


def _low_order(where: str) -> PSIProtocolError:
    return PSIProtocolError(
        f"{where}: an X25519 output is all-zero (input point of small order); refusing it"
    )


def hash_and_blind(scalar: bytes, prefix: bytes, items: list[bytes]) -> bytes:
    """``b''.join(X25519(scalar, u(id)) for id in items)``: one scalar mult per id.

    The digest goes to X25519 unmasked: RFC 7748, section 5 requires X25519 to clear bit 255 of
    the u-coordinate itself, so the result equals ``X25519(scalar, hash_to_u(prefix, id))``
    (tested), without a per-id copy.
    """
    mult = multiplier(scalar)
    base = hashlib.new("sha512_256", prefix)
    out: list[bytes] = []
    append = out.append
    try:
        for item in items:
            h = base.copy()
            h.update(item)
            append(mult(h.digest()))
    except (ValueError, RuntimeError):
        raise _low_order("hashing own ids") from None
    return b"".join(out)


def blind(scalar: bytes, points: bytes) -> bytes:
    """Multiply a packed run of 32-byte u-coordinates by ``scalar`` (X25519 each)."""
    return blind_truncate(scalar, points, POINT_BYTES)


def blind_truncate(scalar: bytes, points: bytes, keep: int) -> bytes:
    """Like :func:`blind` but keep only the first ``keep`` bytes of each output."""
    if len(points) % POINT_BYTES:
        raise PSIProtocolError(f"point buffer of {len(points)} bytes is not a multiple of 32")
    if not 1 <= keep <= POINT_BYTES:
        raise PSIUsageError("keep must be 1..32 bytes")
    mult = multiplier(scalar)
    try:
        if keep == POINT_BYTES:
            out = [mult(points[i : i + 32]) for i in range(0, len(points), 32)]
        else:
            out = [mult(points[i : i + 32])[:keep] for i in range(0, len(points), 32)]
    except (ValueError, RuntimeError):
        raise _low_order("blinding the peer's points") from None
    return b"".join(out)


def tag_bytes(*sizes: int, statistical_bits: int = STATISTICAL_BITS) -> int:
    """Bytes of each final comparison value so that a false match has probability <= 2^-s.

    A false match needs two different ids among ``prod(sizes)`` compared pairs to agree on
    ``8 t`` bits of an X25519 output (close to uniform), so by the union bound the rate is at
    most ``prod(sizes) * 2^(-8 t)``; we take ``t = ceil((s + log2 prod(sizes)) / 8)``, capped at
    32. For two parties with 10^6 ids each: ``t = ceil((40 + 39.9) / 8) = 10`` bytes.
    """
    pairs = 1
    for size in sizes:
        pairs *= max(int(size), 1)
    bits = statistical_bits + math.log2(pairs)
    return max(1, min(POINT_BYTES, math.ceil(bits / 8)))
