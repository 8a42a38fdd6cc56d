"""The Paillier backend of hetero LR, on :mod:`crypto.paillier`.

Masked reveal at the integer level (exact, no float rounding): for ``[[v]]`` the holder draws
``R`` uniform in ``[0, n)`` and computes ``[[v + R]] = [[v]] * (1 + R n) mod n^2`` (``g = n + 1``,
so ``g^R = 1 + R n mod n^2``; Paillier 1999, section 4, additive homomorphism), then
re-randomises it with ``r^n`` for a uniform ``r`` (the standard obfuscator whatever
``crypto.obfuscator`` says: the key owner knows the factorisation, so DJN's short exponent would
rest on an ~80-bit problem against it). The key owner checks the shape, decrypts with
``raw_decrypt_many`` and returns the residues ``m = (v + R) mod n`` in ``[0, n)``, uniform for any
``v``; the holder computes ``(m - R) mod n`` and its signed representative.

Arrays a peer sends carry no scale or bound (``crypto.paillier`` wire format 2): :meth:`accept`
declares the public ones the protocol fixes. Fresh encryptions carry the public bound
``2^(GRADIENT_BOUND_BITS + scale)`` instead of the data's ``max |v|``.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from crypto.errors import CryptoUsageError
from crypto.paillier import (
    EncryptedArray,
    FixedPointEncoding,
    ObfuscatorPool,
    PaillierPrivateKey,
    PaillierPublicKey,
    generate_keypair,
)
from crypto.random import RandomSource, resolve
from vfl.errors import VflError
from vfl.hetero_lr._config import CryptoSettings, Obfuscator, SchemeName
from vfl.hetero_lr._precompute import Precomputer
from vfl.hetero_lr._scheme import GRADIENT_BOUND_BITS, KeyOwner, Masked, PeerKey, draw_masks

__all__ = ["PaillierOwner", "PaillierPeerKey"]


class PaillierPeerKey(PeerKey):
    """A Paillier public key: encrypt, re-randomise, mask."""

    scheme = SchemeName.PAILLIER

    def __init__(
        self,
        public_key: PaillierPublicKey,
        *,
        obfuscator: Obfuscator = Obfuscator.DJN,
        precision_bits: int = 16,
        rng: RandomSource | None = None,
    ) -> None:
        self.precision_bits = precision_bits
        self._precomputer: Precomputer | None = None
        self._mask_precomputer: Precomputer | None = None
        self.public_key = public_key
        self.key_bits = public_key.bits
        self.obfuscator = obfuscator
        self._rng = rng

    @classmethod
    def from_payload(
        cls, payload: Any, settings: CryptoSettings, *, rng: RandomSource | None = None
    ) -> PaillierPeerKey:
        """A peer's key as received; refused when shorter than this party's configured size."""
        if not isinstance(payload, PaillierPublicKey):
            raise VflError(
                "expected the peer's Paillier public key; the parties run different crypto settings"
            )
        if payload.bits < settings.key_bits:
            raise VflError(
                f"a peer's Paillier key has {payload.bits} bits, fewer than the configured crypto.key_bits = {settings.key_bits}"
            )
        return cls(
            payload, obfuscator=settings.obfuscator, precision_bits=settings.precision_bits, rng=rng
        )

    def encrypt(self, x: np.ndarray, *, scale_bits: int | None = None) -> Any:
        scale = self.precision_bits if scale_bits is None else scale_bits
        values = np.asarray(x, dtype=np.float64)
        try:
            return self.public_key.encrypt(
                values,
                encoding=FixedPointEncoding(precision_bits=scale),
                rng=self._rng,
                obfuscator=self.obfuscator.value,
                pool=self._ready_pool(values.size),
                bound=1 << (GRADIENT_BOUND_BITS + scale),
            )
        except CryptoUsageError as exc:
            raise VflError(
                f"a value to encrypt exceeds the public bound 2^{GRADIENT_BOUND_BITS}; the model has diverged"
            ) from exc

    def rerandomize(self, c: Any) -> Any:
        self._check(c)
        pool = self._ready_pool(c.size)
        return c.rerandomize(rng=self._rng, obfuscator=self.obfuscator.value, pool=pool)

    def _ready_pool(self, count: int) -> ObfuscatorPool | None:
        """The precomputed pool when it holds ``count`` obfuscators, else ``None`` (compute now)."""
        if self._precomputer is None or len(self._precomputer.pool) < count:
            return None
        return self._precomputer.pool

    def start_precompute(
        self, *, per_batch: int, idle: threading.Event, masks_per_batch: int = 0
    ) -> None:
        # Only with the system RNG: a seeded test RNG must stay in the protocol thread.
        if self._rng is not None:
            return
        if per_batch > 0 and self._precomputer is None:
            pool = ObfuscatorPool(self.public_key, obfuscator=self.obfuscator.value)
            self._precomputer = Precomputer(pool, target=2 * per_batch, idle=idle)
        if masks_per_batch > 0 and self._mask_precomputer is None:
            # Full r^n for the masked values that go to the key owner (see mask).
            standard = ObfuscatorPool(self.public_key, obfuscator="standard")
            self._mask_precomputer = Precomputer(standard, target=2 * masks_per_batch, idle=idle)

    def stop_precompute(self) -> None:
        for pre in (self._precomputer, self._mask_precomputer):
            if pre is not None:
                pre.stop()
        self._precomputer = self._mask_precomputer = None

    def mask(self, c: Any) -> tuple[Any, Masked]:
        self._check(c)
        pk = self.public_key
        n, nsq = int(pk.n), pk.nsquare
        masks = draw_masks(c.size, modulus=n, rng=resolve(self._rng))
        cts = [ct * (1 + n * r) % nsq for ct, r in zip(c.raw_ciphertexts(), masks, strict=True)]
        out = np.empty(len(cts), dtype=object)
        out[:] = cts
        # The residues are uniform mod n: as a fixed-point array their bound is max_int.
        masked = EncryptedArray(pk, out.reshape(c.shape), scale=c.scale, bound=pk.max_int)
        # Full r^n (precomputed while idle when possible), never DJN: this goes to the key owner.
        pre = self._mask_precomputer
        pool = pre.pool if pre is not None and len(pre.pool) >= c.size else None
        fresh = masked.rerandomize(rng=self._rng, obfuscator="standard", pool=pool)
        return fresh, Masked(masks, c.scale, tuple(c.shape), n)

    def accept(
        self, payload: Any, *, shape: tuple[int, ...], scale_bits: int, bound_bits: int
    ) -> Any:
        self._check(payload)
        if payload.shape != shape:
            raise VflError(f"a peer sent ciphertexts of shape {payload.shape}, expected {shape}")
        return payload.assume(
            scale=scale_bits,
            bound=1 << (bound_bits + scale_bits),
            encoding=FixedPointEncoding(precision_bits=self.precision_bits),
        )

    def is_ciphertext(self, payload: Any) -> bool:
        return isinstance(payload, EncryptedArray) and payload.public_key == self.public_key

    def _check(self, c: Any) -> None:
        if not self.is_ciphertext(c):
            raise VflError("expected a ciphertext under this Paillier key")

    @property
    def wire(self) -> Any:
        return self.public_key


class PaillierOwner(KeyOwner):
    """This party's Paillier key pair; encryption uses the owner's CRT shortcut."""

    def __init__(
        self,
        private_key: PaillierPrivateKey,
        *,
        obfuscator: Obfuscator = Obfuscator.DJN,
        precision_bits: int = 16,
        rng: RandomSource | None = None,
    ) -> None:
        self._private = private_key
        self._public = _OwnerPublic(
            private_key, obfuscator=obfuscator, precision_bits=precision_bits, rng=rng
        )

    @classmethod
    def generate(
        cls, settings: CryptoSettings, *, rng: RandomSource | None = None
    ) -> PaillierOwner:
        _, private = generate_keypair(
            settings.key_bits, rng=rng, insecure_allow_small_keys=settings.insecure_allow_small_keys
        )
        return cls(
            private,
            obfuscator=settings.obfuscator,
            precision_bits=settings.precision_bits,
            rng=rng,
        )

    @property
    def public(self) -> PeerKey:
        return self._public

    def decrypt_raw(self, c: Any, *, shape: tuple[int, ...]) -> list[int]:
        if not self._public.is_ciphertext(c):
            raise VflError("expected a ciphertext under our own Paillier key")
        if c.shape != shape:
            raise VflError(f"asked to decrypt ciphertexts of shape {c.shape}, expected {shape}")
        return [int(m) for m in self._private.raw_decrypt_many(c.raw_ciphertexts())]

    def decrypt(self, c: Any) -> np.ndarray:
        return np.asarray(self._private.decrypt(c), dtype=np.float64)


class _OwnerPublic(PaillierPeerKey):
    """Our own public key; with the standard obfuscator it uses the owner's CRT shortcut."""

    def __init__(
        self,
        private_key: PaillierPrivateKey,
        *,
        obfuscator: Obfuscator,
        precision_bits: int,
        rng: RandomSource | None = None,
    ) -> None:
        super().__init__(
            private_key.public_key, obfuscator=obfuscator, precision_bits=precision_bits, rng=rng
        )
        self._private = private_key

    def encrypt(self, x: np.ndarray, *, scale_bits: int | None = None) -> Any:
        if self.obfuscator is Obfuscator.DJN or self._precomputer is not None:
            return super().encrypt(x, scale_bits=scale_bits)
        encoding = FixedPointEncoding(
            precision_bits=self.precision_bits if scale_bits is None else scale_bits
        )
        return self._private.encrypt(
            np.asarray(x, dtype=np.float64),
            encoding=encoding,
            rng=self._rng,
            bound=1 << (GRADIENT_BOUND_BITS + encoding.precision_bits),
        )
