"""Unclamped x-only scalar multiplication on Curve25519 and its twist (gmpy2), for the
multi-party protocol's "strip my one-time key" step.

``X25519`` (RFC 7748) always clamps its scalar, so it cannot multiply by ``r^-1 mod q``. This
module runs the same Montgomery ladder (RFC 7748, section 5) with an arbitrary scalar. A point
``u`` lies on the curve when ``v = u^3 + A u^2 + u`` is a square mod p (group order ``8 l``) and
on the twist otherwise (order ``4 l'``); after one clamped multiplication (a multiple of 8) it
lies in the prime-order subgroup of order ``q = l`` or ``q = l'``, where scalars act mod ``q``:

    strip(u, k, r) = x([k_c * r_c^-1 mod q] P_u)     with  k_c = clamp(k), r_c = clamp(r)

so that ``strip(X25519(r, w), k, r) == X25519(k, w)`` for every ``w`` (tested).
"""

from __future__ import annotations

import gmpy2

from psi.errors import PSIProtocolError

__all__ = ["P", "L_CURVE", "L_TWIST", "subgroup_order", "ladder", "strip_and_rekey"]

P = (1 << 255) - 19
_A24 = 121665
_A = 486662
#: Order of the prime subgroup of Curve25519 (RFC 7748): #E = 8 * L_CURVE.
L_CURVE = (1 << 252) + 27742317777372353535851937790883648493
#: Order of the prime subgroup of the twist: #E' = 2(p + 1) - #E = 4 * L_TWIST (prime, 253 bits).
L_TWIST = (2 * P + 2 - 8 * L_CURVE) // 4

_P = gmpy2.mpz(P)
_HALF = gmpy2.mpz((P - 1) // 2)


def _decode_u(data: bytes) -> gmpy2.mpz:
    return gmpy2.mpz(int.from_bytes(data, "little") & ((1 << 255) - 1)) % _P


def subgroup_order(u_bytes: bytes) -> int:
    """``L_CURVE`` if ``u`` is on Curve25519, ``L_TWIST`` if on the twist (Euler's criterion)."""
    u = _decode_u(u_bytes)
    v = (u * u * u + _A * u * u + u) % _P
    if v == 0:
        raise PSIProtocolError("a point of small order reached the multi-party ladder")
    return L_CURVE if gmpy2.powmod(v, _HALF, _P) == 1 else L_TWIST


def ladder(k: int, u_bytes: bytes) -> bytes:
    """x([k] P_u) for any ``0 <= k < 2^255`` (RFC 7748 ladder without clamping), 32 bytes LE."""
    x1 = _decode_u(u_bytes)
    x2, z2, x3, z3 = gmpy2.mpz(1), gmpy2.mpz(0), x1, gmpy2.mpz(1)
    swap = 0
    p = _P
    for t in range(254, -1, -1):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = bit
        a = x2 + z2
        aa = a * a % p
        b = x2 - z2
        bb = b * b % p
        e = aa - bb
        c = x3 + z3
        d = x3 - z3
        da = d * a % p
        cb = c * b % p
        x3 = (da + cb) ** 2 % p
        z3 = x1 * ((da - cb) ** 2 % p) % p
        x2 = aa * bb % p
        z2 = e * ((aa + _A24 * e) % p) % p
    if swap:
        x2, z2 = x3, z3
    out = int(x2 * gmpy2.powmod(z2, p - 2, p) % p)
    if out == 0:
        raise PSIProtocolError("the multi-party ladder produced the all-zero output")
    return out.to_bytes(32, "little")


def _clamped_int(scalar: bytes) -> int:
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return int.from_bytes(k, "little")


def strip_and_rekey(key: bytes, one_time: bytes, points: bytes) -> bytes:
    """Replace the one-time scalar by ``key`` on a packed run of 32-byte points (see module doc)."""
    k = _clamped_int(key)
    r = _clamped_int(one_time)
    factors = {q: k * pow(r, -1, q) % q for q in (L_CURVE, L_TWIST)}
    out = bytearray()
    for i in range(0, len(points), 32):
        u = points[i : i + 32]
        out += ladder(factors[subgroup_order(u)], u)
    return bytes(out)
