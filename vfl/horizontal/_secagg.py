"""Secure aggregation with dropout recovery: double masking and Shamir-shared keys.

Bonawitz et al., "Practical Secure Aggregation for Privacy-Preserving Machine Learning"
(CCS 2017, Sec. 4, Fig. 4: the honest-but-curious protocol). Per round, each participant ``u``
draws fresh secrets: an X25519 *share-encryption* key ``(c_u, C_u)``, a *mask* key seed ``s_u``
(its X25519 key ``(s_u, S_u)``) and a *self-mask* seed ``b_u``. With ``ctx = "vfl/secagg/v2" |
job | round | round nonce``, every pair ``u, v`` derives the pairwise seed

    ``s_uv = HKDF-SHA256(X25519(s_u, S_v), info = ctx | "mask" | min(u,v) | max(u,v))``

and ``u`` sends, in ``Z_{2^64}^d`` (``enc``: two's complement fixed point, ``F`` fractional bits),

    ``y_u = enc(x_u) + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)``.

``PRG`` is SHAKE-256 read as little-endian 64-bit words. Before masking, ``u`` Shamir-shares
``s_u`` and ``b_u`` (``t`` of ``n``, :mod:`vfl.horizontal._shamir`) and sends share ``v`` to
``v`` through the aggregator, sealed with ChaCha20-Poly1305 (RFC 8439) under
``HKDF(X25519(c_u, C_v), info = ctx | "share" | u | v)`` with ``ctx | u | v`` as associated
data, so the aggregator can neither read nor alter it unnoticed. To unmask, the aggregator asks
the survivors for ``b_u`` shares of every survivor and ``s_v`` shares of every participant that
dropped before its masked input arrived (never both for one client), rebuilds those secrets,
checks them against the commitments each client advertised (``S_v`` itself for ``s_v``,
``SHA-256(b_u)`` for ``b_u``), and computes ``sum_u x_u``. With ``q8`` the same runs in
``Z_{2^8}`` on stochastically rounded multiples of a shared step (:func:`encode_ring8`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from crypto.keys import AgreementKey
from crypto.random import RandomSource, resolve
from vfl.errors import VflError
from vfl.horizontal._shamir import PRIME, SHARE_BYTES

__all__ = [
    "FRACTION_BITS",
    "SecAggError",
    "RoundSecrets",
    "encode_fixed",
    "decode_fixed",
    "encode_ring8",
    "decode_ring8",
    "prg",
    "round_context",
    "commit_seed",
    "key_from_seed",
    "mask_input",
    "unmask_total",
    "seal_share",
    "open_share",
    "seed_to_int",
    "int_to_seed",
    "verify_rebuilt",
    "advertisement_statement",
    "check_sum_bound",
]

FRACTION_BITS = 24
SEED_BYTES = 32
_LIMIT = 2.0**62
_NONCE = 12


class SecAggError(VflError):
    """Secure aggregation cannot proceed: a refused share, too few survivors, a bad secret."""


def encode_fixed(v: np.ndarray, *, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """``round(v * 2^F)`` as two's complement ``uint64``; refuses values that could overflow.

    >>> decode_fixed(encode_fixed(np.array([-1.5, 0.25])))
    array([-1.5 ,  0.25])
    """
    scaled = np.rint(np.asarray(v, dtype=np.float64) * 2.0**fraction_bits)
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= _LIMIT):
        raise VflError("update is non-finite or too large for fixed-point secure aggregation")
    return scaled.astype(np.int64).view(np.uint64)


def decode_fixed(u: np.ndarray, *, fraction_bits: int = FRACTION_BITS) -> np.ndarray:
    """Inverse of :func:`encode_fixed` (reads ``uint64`` as signed)."""
    out: np.ndarray = np.asarray(u, dtype=np.uint64).view(np.int64).astype(np.float64)
    return out / 2.0**fraction_bits


def prg(seed: bytes, size: int, dtype: np.dtype[Any] | type = np.uint64) -> np.ndarray:
    """``size`` uniform words of ``dtype`` (``uint64`` or ``uint8``): SHAKE-256(seed) read as
    little-endian words."""
    dt = np.dtype(dtype)
    raw = hashlib.shake_256(seed).digest(dt.itemsize * size)
    return np.frombuffer(raw, dtype=dt.newbyteorder("<")).astype(dt)


def encode_ring8(v: np.ndarray, *, step: float, rng: np.random.Generator) -> np.ndarray:
    """``Q(v / step) mod 2^8`` with unbiased stochastic rounding ``Q`` (``E[Q(x)] = x``).

    Single values may wrap; what must fit is the *sum* over the round's clients,
    ``|sum_u Q(v_u / step)| <= 127`` (modular clipping of Bonawitz et al., "Federated Learning
    with Autotuned Communication-Efficient Secure Aggregation", 2019): the aggregator picks
    ``step`` from the previous round's sum with headroom.
    """
    scaled = np.asarray(v, dtype=np.float64).ravel() / step
    if not np.all(np.isfinite(scaled)) or np.any(np.abs(scaled) >= _LIMIT):
        raise VflError("update is non-finite or too large for the 8-bit secure ring")
    low = np.floor(scaled)
    q = low + (rng.random(scaled.shape) < scaled - low)
    return (q.astype(np.int64) & 0xFF).astype(np.uint8)


def decode_ring8(total: np.ndarray, *, step: float) -> np.ndarray:
    """Inverse of the summed :func:`encode_ring8`: read ``uint8`` as signed, times ``step``."""
    out: np.ndarray = np.asarray(total, dtype=np.uint8).view(np.int8).astype(np.float64) * step
    return out


def round_context(*, job: str, round: int, nonce: bytes) -> bytes:
    """``"vfl/secagg/v2" | job | round | nonce``: binds every key and share to one round."""
    return b"|".join([b"vfl/secagg/v2", job.encode(), str(round).encode(), nonce.hex().encode()])


def advertisement_statement(
    *, round: int, client: str, share_public: bytes, mask_public: bytes, commitment: bytes
) -> bytes:
    """What a client signs when it advertises its round keys (the channel's
    :meth:`~protocols.channel.Channel.attest` adds job and session id):
    ``"vfl/secagg/advertise/v1" | i64 round | u16 len | client | C_u | S_u | commitment``.

    Every client checks every entry of the roster against it, so an aggregator cannot put its
    own keys in place of a client's (it would then read the shares sealed to that client and
    strip the pair masks), nor replay a client's keys from an earlier round."""
    name = client.encode()
    return b"".join([
        b"vfl/secagg/advertise/v1", int(round).to_bytes(8, "big", signed=True),
        len(name).to_bytes(2, "big"), name, bytes(share_public), bytes(mask_public),
        bytes(commitment),
    ])  # fmt: skip


def check_sum_bound(encoded: np.ndarray, count: int) -> None:
    """Refuse an encoded input whose entries, summed over ``count`` clients, could wrap in
    ``Z_2^64``: ``count * max|q| < 2^63`` must hold (every client checks it for the roster size
    before masking, so the survivors' sum is exact)."""
    signed = np.asarray(encoded, dtype=np.uint64).view(np.int64)
    peak = int(np.max(np.abs(signed), initial=0))
    if count < 1 or count * peak >= 1 << 63:
        raise SecAggError(
            f"update too large for secure aggregation among {count} clients: largest entry "
            f"{peak / 2.0**FRACTION_BITS:.6g}, the bound is {2.0**63 / max(count, 1) / 2.0**FRACTION_BITS:.6g}"
        )


def commit_seed(seed: bytes) -> bytes:
    """``SHA-256("vfl/secagg/self" | b)``: lets the aggregator check a rebuilt self-mask seed."""
    return hashlib.sha256(b"vfl/secagg/self|" + seed).digest()


def key_from_seed(seed: bytes) -> AgreementKey:
    """The X25519 key whose 32-byte private scalar seed is ``seed`` (clamped by X25519)."""
    if len(seed) != SEED_BYTES:
        raise SecAggError(f"a mask key seed is {SEED_BYTES} bytes, got {len(seed)}")
    return AgreementKey(X25519PrivateKey.from_private_bytes(bytes(seed)))


@dataclass(frozen=True)
class RoundSecrets:
    """One client's fresh secrets for one round (never reused, never sent in clear)."""

    share_key: AgreementKey
    mask_seed: bytes
    self_seed: bytes

    @classmethod
    def generate(cls, rng: RandomSource | None = None) -> RoundSecrets:
        source = resolve(rng)
        return cls(
            AgreementKey.generate(rng=source),
            source.random_bytes(SEED_BYTES),
            source.random_bytes(SEED_BYTES),
        )

    @property
    def mask_key(self) -> AgreementKey:
        return key_from_seed(self.mask_seed)


def _pair_seed(key: AgreementKey, peer_public: bytes, *, context: bytes, a: str, b: str) -> bytes:
    lo, hi = sorted((a, b))
    return key.exchange(peer_public, info=b"|".join([context, b"mask", lo.encode(), hi.encode()]))


def _add_pair_masks(
    y: np.ndarray, key: AgreementKey, *, me: str, peers: Mapping[str, bytes], context: bytes
) -> np.ndarray:
    """``y + sum_{v > me} PRG(s_uv) - sum_{v < me} PRG(s_uv)`` over ``peers`` (mod 2^64)."""
    for peer in sorted(peers):
        if peer == me:
            continue
        m = prg(_pair_seed(key, peers[peer], context=context, a=me, b=peer), y.size, y.dtype)
        with np.errstate(over="ignore"):
            y = y + m if peer > me else y - m
    return y


def mask_input(
    value: np.ndarray,
    *,
    me: str,
    secrets: RoundSecrets,
    peers: Mapping[str, bytes],
    context: bytes,
    step: float = 0.0,
    rng: np.random.Generator | None = None,
    count: int = 0,
) -> np.ndarray:
    """``y_u = enc(value) + PRG(b_u) + sum_{v > u} PRG(s_uv) - sum_{v < u} PRG(s_uv)``.

    ``peers`` maps the round's participants (those whose shares were delivered) to their mask
    public keys ``S_v``. ``step = 0``: ``enc`` is fixed point in ``Z_2^64``, and the sum over
    ``count`` clients (default: ``len(peers)``) must not wrap (:func:`check_sum_bound`);
    ``step > 0``: the 8-bit ring of :func:`encode_ring8` (masks then are bytes; wrapping
    single values is part of its modular clipping).
    """
    if step > 0:
        y = encode_ring8(value, step=step, rng=rng or np.random.default_rng())
    else:
        y = encode_fixed(value).ravel().copy()
        check_sum_bound(y, count or len(peers))
    with np.errstate(over="ignore"):
        y = y + prg(secrets.self_seed, y.size, y.dtype)
    return _add_pair_masks(y, secrets.mask_key, me=me, peers=peers, context=context)


def unmask_total(
    masked: Mapping[str, np.ndarray],
    *,
    self_seeds: Mapping[str, bytes],
    dropped_keys: Mapping[str, AgreementKey],
    mask_publics: Mapping[str, bytes],
    context: bytes,
    step: float = 0.0,
) -> np.ndarray:
    """``dec(sum_u y_u - sum_u PRG(b_u) - (pair masks between survivors and dropped))``.

    ``masked`` and ``self_seeds`` are keyed by the survivors; ``dropped_keys`` holds the rebuilt
    mask keys of the participants whose masked input never arrived; ``mask_publics`` the
    survivors' ``S_u``. The survivors' masks among themselves cancel in the sum. ``step > 0``:
    the inputs are in the 8-bit ring (:func:`decode_ring8`).
    """
    if not masked or set(self_seeds) != set(masked):
        raise SecAggError("need exactly one self-mask seed per survivor to unmask")
    size = next(iter(masked.values())).size
    dtype = np.dtype(np.uint8 if step > 0 else np.uint64)
    total = np.zeros(size, dtype=dtype)
    with np.errstate(over="ignore"):
        for name, y in masked.items():
            total = total + np.asarray(y, dtype=dtype) - prg(self_seeds[name], size, dtype)
    survivors = {n: mask_publics[n] for n in masked}
    for name, key in dropped_keys.items():
        # y_u holds +PRG(s_uv) when v > u: that is the dropped client's -(its own sign) term.
        residue = _add_pair_masks(
            np.zeros(size, dtype=dtype), key, me=name, peers=survivors, context=context
        )
        with np.errstate(over="ignore"):
            total = total + residue
    return decode_ring8(total, step=step) if step > 0 else decode_fixed(total)


def _share_cipher(
    key: AgreementKey, peer_public: bytes, *, context: bytes, sender: str, recipient: str
) -> tuple[ChaCha20Poly1305, bytes]:
    aad = b"|".join([context, b"share", sender.encode(), recipient.encode()])
    return ChaCha20Poly1305(key.exchange(peer_public, info=aad)), aad


def _element(value: int) -> bytes:
    return value.to_bytes(SHARE_BYTES, "big")


def seal_share(
    key: AgreementKey,
    peer_public: bytes,
    *,
    context: bytes,
    sender: str,
    recipient: str,
    mask_share: int,
    self_share: int,
    rng: RandomSource | None = None,
) -> bytes:
    """``nonce | ChaCha20-Poly1305(mask_share | self_share)``, bound to round, sender, recipient."""
    aead, aad = _share_cipher(key, peer_public, context=context, sender=sender, recipient=recipient)
    nonce = resolve(rng).random_bytes(_NONCE)
    return nonce + aead.encrypt(nonce, _element(mask_share) + _element(self_share), aad)


def open_share(
    key: AgreementKey, peer_public: bytes, *, context: bytes, sender: str, recipient: str,
    sealed: bytes,
) -> tuple[int, int]:  # fmt: skip
    """``(mask_share, self_share)`` of :func:`seal_share`; any alteration raises one opaque
    :class:`SecAggError` (wrong round, pair, key or bytes)."""
    aead, aad = _share_cipher(key, peer_public, context=context, sender=sender, recipient=recipient)
    try:
        plain = aead.decrypt(bytes(sealed[:_NONCE]), bytes(sealed[_NONCE:]), aad)
    except (InvalidTag, ValueError):
        raise SecAggError(f"share from {sender} refused: authentication failed") from None
    if len(plain) != 2 * SHARE_BYTES:
        raise SecAggError(f"share from {sender} refused: wrong length")
    mask, own = (
        int.from_bytes(plain[:SHARE_BYTES], "big"),
        int.from_bytes(plain[SHARE_BYTES:], "big"),
    )
    if mask >= PRIME or own >= PRIME:
        raise SecAggError(f"share from {sender} refused: not a field element")
    return mask, own


def seed_to_int(seed: bytes) -> int:
    """A 32-byte seed as a field element (``< 2^256 < p``)."""
    return int.from_bytes(seed, "big")


def int_to_seed(value: int) -> bytes:
    """Inverse of :func:`seed_to_int`; refuses values that are not a 32-byte seed."""
    if not 0 <= value < 1 << (8 * SEED_BYTES):
        raise SecAggError("rebuilt secret is not a 32-byte seed")
    return value.to_bytes(SEED_BYTES, "big")


def verify_rebuilt(
    *, mask_seed: bytes | None = None, mask_public: bytes = b"", self_seed: bytes | None = None,
    commitment: bytes = b"",
) -> None:  # fmt: skip
    """Check a rebuilt secret against what its owner advertised; :class:`SecAggError` if not."""
    if mask_seed is not None and not hmac.compare_digest(
        key_from_seed(mask_seed).public_bytes(), mask_public
    ):
        raise SecAggError("rebuilt mask key does not match the advertised public key")
    if self_seed is not None and not hmac.compare_digest(commit_seed(self_seed), commitment):
        raise SecAggError("rebuilt self-mask seed does not match its commitment")
