"""The group arithmetic of ECDH-PSI: ristretto255 (RFC 9496) over libsodium (pure functions).

Why this group (docs/protocols/psi.md, "The group"): ristretto255 has prime order
``l = 2^252 + 27742317777372353535851937790883648493``, every valid 32-byte encoding is one
element of that group and every other string is rejected by the decoder. So a blinded value
``[a] H(x)`` is a uniform element of a prime-order group and carries no public bit of ``x``
(the X25519-on-hashed-u construction it replaces kept the curve/twist bit of ``H(x)``).

Hash into the group (RFC 9496, section 4.3.4, ``hash_to_group`` with SHA-512)::

    H(id) = ristretto255_from_hash( SHA-512( len(D) || D || len(salt) || salt || id ) )

where ``D`` is :data:`DOMAIN` and ``salt`` the per-session salt agreed by all parties. The map
applies the ristretto Elligator map to each half of the 64-byte digest and adds the two points,
so ``H`` is a random oracle into the group and nobody knows the discrete log of ``H(id)``.

Blinding is scalar multiplication by a secret scalar in ``[1, l)``; it commutes
(``[a][b]P == [b][a]P``), which ECDH-PSI needs (Meadows 1986; Huberman, Franklin, Hogg 1999),
and the multi-party protocol can strip a one-time scalar by multiplying with its inverse mod
``l`` (:func:`rekey`). libsodium refuses an input that is not a canonical encoding and an output
that is the identity; both are reported as :class:`PSIProtocolError`.

These functions run inside worker processes, so they take and return ``bytes`` (cheap to move
between processes) and import nothing heavy. The per-chunk worker functions are
:func:`hash_and_blind`, :func:`blind`, :func:`blind_truncate` and :func:`rekey`.
"""

from __future__ import annotations

import ctypes
import hashlib
import math

import pysodium  # type: ignore[import-untyped]

from psi.errors import PSIProtocolError, PSIUsageError

__all__ = [
    "DOMAIN",
    "POINT_BYTES",
    "SCALAR_BYTES",
    "SEED_BYTES",
    "STATISTICAL_BITS",
    "GROUP",
    "hash_prefix",
    "hash_to_point",
    "scalar_from_seed",
    "hash_and_blind",
    "blind",
    "blind_truncate",
    "rekey",
    "is_valid_point",
    "tag_bytes",
]

DOMAIN = b"vfl-engine/psi/ristretto255-sha512/v2"
GROUP = "ristretto255"
POINT_BYTES = 32
SCALAR_BYTES = 32
#: Bytes of uniform randomness reduced mod ``l`` into one scalar (bias below 2^-250).
SEED_BYTES = 64
#: The false-match rate over the whole comparison is at most 2^-STATISTICAL_BITS.
STATISTICAL_BITS = 40

_lib = pysodium.sodium
_from_hash = _lib.crypto_core_ristretto255_from_hash
_scalarmult = _lib.crypto_scalarmult_ristretto255


def hash_prefix(salt: bytes) -> bytes:
    """The length-prefixed ``D || salt`` that every hashed id starts with."""
    if not 16 <= len(salt) <= 255:
        raise PSIUsageError("session salt must be 16..255 bytes")
    return bytes([len(DOMAIN)]) + DOMAIN + bytes([len(salt)]) + salt


def hash_to_point(prefix: bytes, item: bytes) -> bytes:
    """``H(id)``: the ristretto255 encoding of ``from_hash(SHA-512(prefix || id))``."""
    out = ctypes.create_string_buffer(POINT_BYTES)
    _from_hash(out, hashlib.sha512(prefix + item).digest())
    return out.raw


def scalar_from_seed(seed: bytes) -> bytes:
    """A secret scalar in ``[1, l)``: ``seed`` (64 uniform bytes) reduced mod ``l``."""
    if len(seed) != SEED_BYTES:
        raise PSIUsageError(f"a scalar seed is {SEED_BYTES} bytes")
    scalar: bytes = pysodium.crypto_core_ristretto255_scalar_reduce(seed)
    if not any(scalar):
        raise PSIUsageError("the scalar seed reduced to zero; draw another")
    return scalar


def _check_scalar(scalar: bytes) -> None:
    if len(scalar) != SCALAR_BYTES:
        raise PSIUsageError(f"a ristretto255 scalar is {SCALAR_BYTES} bytes")


def _refused(where: str) -> PSIProtocolError:
    return PSIProtocolError(
        f"{where}: a point is not a canonical ristretto255 encoding or the product is the "
        "identity; refusing it"
    )


def hash_and_blind(scalar: bytes, prefix: bytes, items: list[bytes]) -> bytes:
    """``b''.join([scalar] H(id) for id in items)``: one hash and one scalar mult per id."""
    _check_scalar(scalar)
    base = hashlib.sha512(prefix)
    point = ctypes.create_string_buffer(POINT_BYTES)
    out = ctypes.create_string_buffer(POINT_BYTES * len(items))
    address = ctypes.addressof(out)
    from_hash, mult = _from_hash, _scalarmult
    for i, item in enumerate(items):
        h = base.copy()
        h.update(item)
        from_hash(point, h.digest())
        if mult(ctypes.c_void_p(address + POINT_BYTES * i), scalar, point) != 0:
            raise _refused("hashing own ids")
    return out.raw


def blind(scalar: bytes, points: bytes) -> bytes:
    """Multiply a packed run of 32-byte ristretto255 encodings by ``scalar``."""
    return blind_truncate(scalar, points, POINT_BYTES)


def blind_truncate(scalar: bytes, points: bytes, keep: int) -> bytes:
    """Like :func:`blind` but keep only the first ``keep`` bytes of each output."""
    _check_scalar(scalar)
    if len(points) % POINT_BYTES:
        raise PSIProtocolError(f"point buffer of {len(points)} bytes is not a multiple of 32")
    if not 1 <= keep <= POINT_BYTES:
        raise PSIUsageError("keep must be 1..32 bytes")
    count = len(points) // POINT_BYTES
    out = ctypes.create_string_buffer(POINT_BYTES * count)
    address = ctypes.addressof(out)
    mult = _scalarmult
    for i in range(count):
        start = POINT_BYTES * i
        if mult(ctypes.c_void_p(address + start), scalar, points[start : start + 32]) != 0:
            raise _refused("blinding the peer's points")
    raw = out.raw
    if keep == POINT_BYTES:
        return raw
    return b"".join(raw[i : i + keep] for i in range(0, len(raw), POINT_BYTES))


def rekey(key: bytes, one_time: bytes, points: bytes) -> bytes:
    """Replace the one-time scalar ``r`` by ``key`` ``k`` on a packed run of points:
    ``[k r^-1 mod l]`` times each, so ``rekey(k, r, blind(r, P)) == blind(k, P)``."""
    _check_scalar(key)
    _check_scalar(one_time)
    inverse = pysodium.crypto_core_ristretto255_scalar_invert(one_time)
    factor = pysodium.crypto_core_ristretto255_scalar_mul(key, inverse)
    return blind(factor, points)


def is_valid_point(point: bytes) -> bool:
    """Whether ``point`` is a canonical ristretto255 encoding of a group element."""
    return len(point) == POINT_BYTES and bool(
        pysodium.crypto_core_ristretto255_is_valid_point(point)
    )


def tag_bytes(*sizes: int, statistical_bits: int = STATISTICAL_BITS) -> int:
    """Bytes of each final comparison value so that a false match has probability <= 2^-s.

    A false match needs two different ids among ``prod(sizes)`` compared pairs to agree on the
    first ``t`` bytes of the encoding of a uniform group element. Those carry ``8 t - 1``
    close-to-uniform bits (a canonical encoding is an even field element: bit 0 is always 0),
    so by the union bound the rate is at most ``prod(sizes) * 2^(1 - 8 t)``; we take
    ``t = ceil((s + 1 + log2 prod(sizes)) / 8)``, capped at 32. For two parties with 10^6 ids
    each: ``t = ceil((40 + 1 + 39.9) / 8) = 11`` bytes.
    """
    pairs = 1
    for size in sizes:
        pairs *= max(int(size), 1)
    bits = statistical_bits + 1 + math.log2(pairs)
    return max(1, min(POINT_BYTES, math.ceil(bits / 8)))
