"""The homomorphic backends of hetero LR, from a registry: ``paillier`` and ``plain``.

The protocol code does arithmetic on "ciphertexts" with ``+``, ``*`` and ``X.T @ c``, which both a
Paillier ``EncryptedArray`` and a plain ``numpy`` array support, so the same protocol runs in both
modes. What differs is collected here:

* :class:`KeyOwner` -- this party's own key pair: ``encrypt``, ``decrypt_raw`` (shape-checked,
  exact residues mod n, for masked reveals) and the public part to send to peers.
* :class:`PeerKey` -- a peer's public key: ``encrypt``, ``rerandomize``, ``mask`` and ``accept``
  (check a peer's ciphertexts and declare their public scale and bound).

Masked reveal (every decryption done for another party): the holder of ``[[v]]`` draws masks
``R`` uniform modulo the plaintext modulus ``n``, sends ``[[v + R]]`` re-randomised with a full
``r^n`` (uniform ``r``, not the DJN short exponent: the key owner knows ``p`` and ``q``), the key
owner checks the count and shape of what it was asked to decrypt, then returns the exact residue
``(v + R) mod n``; the holder computes ``(m - R) mod n``, maps it to the signed range and checks
``|v| < 2^(GRADIENT_BOUND_BITS + scale)``. ``(v + R) mod n`` is uniform whatever ``v`` is (also
for a planted ``v`` far above the bound): the mask is perfectly hiding, and a planted value is
caught by the holder's bound check without the key owner having learnt anything.

``plain`` runs the same messages without encryption, for debugging and for measuring what
encryption costs; choosing it warns loudly (``warnings.warn`` and ``logging.warning``).
"""

from __future__ import annotations

import abc
import logging
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from crypto.random import RandomSource, resolve
from vfl.errors import VflError
from vfl.hetero_lr._config import CryptoSettings, SchemeName

__all__ = [
    "GRADIENT_BOUND_BITS",
    "MASK_SLACK_BITS",
    "PLAIN_MODULUS",
    "KeyOwner",
    "Masked",
    "PeerKey",
    "SCHEMES",
    "check_bound",
    "make_owner",
    "peer_key",
    "signed",
]

logger = logging.getLogger(__name__)

MASK_SLACK_BITS = 40
# |value| < 2^GRADIENT_BOUND_BITS for every value revealed under a mask (checked after unmasking).
GRADIENT_BOUND_BITS = 32
PLAIN_SCALE_BITS = 48
# Plain mode has no Paillier modulus: its masks are uniform modulo this public power of two.
PLAIN_MODULUS = 1 << 256


def signed(value: int, modulus: int) -> int:
    """The representative of ``value mod modulus`` in ``(-modulus/2, modulus/2]``."""
    r = value % modulus
    return r - modulus if r > modulus // 2 else r


def check_bound(values: list[int], scale_bits: int, what: str) -> None:
    """Raise :class:`VflError` when a revealed integer is ``>= 2^(GRADIENT_BOUND_BITS + scale)``."""
    limit = 1 << (GRADIENT_BOUND_BITS + scale_bits)
    if any(abs(v) >= limit for v in values):
        raise VflError(
            f"a revealed {what} exceeds the public bound 2^{GRADIENT_BOUND_BITS}: a peer planted "
            "values or deviated from the protocol"
        )


@dataclass(frozen=True)
class Masked:
    """What the holder keeps after masking: masks uniform mod ``modulus``, the values' scale."""

    masks: tuple[int, ...]
    scale_bits: int
    shape: tuple[int, ...]
    modulus: int

    def unmask(self, revealed: list[int], *, what: str = "value") -> np.ndarray:
        """Exact ``v = (m - R) mod n`` (signed) scaled back to floats, after the bound check."""
        if len(revealed) != len(self.masks):
            raise VflError(
                f"masked reveal returned {len(revealed)} values, expected {len(self.masks)}"
            )
        if any(not 0 <= int(r) < self.modulus for r in revealed):
            raise VflError("masked reveal returned a value outside [0, n)")
        values = [
            signed(int(r) - m, self.modulus) for r, m in zip(revealed, self.masks, strict=True)
        ]
        check_bound(values, self.scale_bits, what)
        scale = 1 << self.scale_bits
        return np.array([v / scale for v in values], dtype=np.float64).reshape(self.shape)


def draw_masks(count: int, *, modulus: int, rng: RandomSource) -> tuple[int, ...]:
    """Masks uniform in ``[0, modulus)``: ``(v + R) mod n`` is uniform for every ``v``."""
    return tuple(rng.randbelow(modulus) for _ in range(count))


class PeerKey(abc.ABC):
    """A public key (ours or a peer's): what a party can do without the secret key."""

    scheme: SchemeName
    key_bits: int
    precision_bits: int = 32  # fixed-point fractional bits of fresh ciphertexts

    @abc.abstractmethod
    def encrypt(self, x: np.ndarray, *, scale_bits: int | None = None) -> Any:
        """Encrypt a float array (at ``scale_bits`` fractional bits, default the scheme's)."""

    @abc.abstractmethod
    def rerandomize(self, c: Any) -> Any:
        """Fresh randomness before a ciphertext leaves this party."""

    @abc.abstractmethod
    def mask(self, c: Any) -> tuple[Any, Masked]:
        """``([[c + R]], Masked)``: the masked ciphertext (``R`` uniform mod n, re-randomised with
        a full ``r^n``: it goes to the key owner) to send and the masks to keep."""

    @abc.abstractmethod
    def accept(
        self, payload: Any, *, shape: tuple[int, ...], scale_bits: int, bound_bits: int
    ) -> Any:
        """Check that a peer sent ciphertexts under this key of the expected ``shape`` and declare
        the public scale and bound ``2^bound_bits`` (real units) the protocol fixes for them: the
        wire carries neither, and a peer's claim is never trusted. Raises :class:`VflError`."""

    def start_precompute(  # noqa: B027
        self, *, per_batch: int, idle: threading.Event, masks_per_batch: int = 0
    ) -> None:
        """Compute randomness for about two batches while ``idle``: ``per_batch`` encryptions
        with the configured obfuscator and ``masks_per_batch`` full ``r^n`` for masked values."""

    def stop_precompute(self) -> None:  # noqa: B027
        """Stop precomputing (idempotent)."""

    @abc.abstractmethod
    def is_ciphertext(self, payload: Any) -> bool:
        """True when ``payload`` is a ciphertext under this key (used to check what arrives)."""

    @property
    @abc.abstractmethod
    def wire(self) -> Any:
        """The payload that gives a peer this public key (``None`` in plain mode)."""


class KeyOwner(abc.ABC):
    """This party's own key pair."""

    @property
    @abc.abstractmethod
    def public(self) -> PeerKey:
        """The public half."""

    @abc.abstractmethod
    def decrypt_raw(self, c: Any, *, shape: tuple[int, ...]) -> list[int]:
        """Residues in ``[0, n)`` of a masked ciphertext a peer asks this party to decrypt.

        The count and shape are checked against the ``shape`` the protocol expects *before*
        anything is decrypted (:class:`VflError` otherwise)."""

    @abc.abstractmethod
    def decrypt(self, c: Any) -> np.ndarray:
        """Floats."""


# ---------------------------------------------------------------------------------------------
# plain: no encryption


class _PlainMaskedArray:
    """A "masked ciphertext" in plain mode: the exact integers v * 2^s + R."""

    def __init__(self, values: list[int], shape: tuple[int, ...]) -> None:
        self.values = values
        self.shape = shape


class PlainKey(PeerKey):
    scheme = SchemeName.PLAIN
    key_bits = 0

    def __init__(self, rng: RandomSource | None = None) -> None:
        self._rng = resolve(rng)

    def encrypt(self, x: np.ndarray, *, scale_bits: int | None = None) -> Any:
        return np.asarray(x, dtype=np.float64).copy()

    def rerandomize(self, c: Any) -> Any:
        return c

    def mask(self, c: Any) -> tuple[Any, Masked]:
        arr = np.asarray(c, dtype=np.float64)
        raw = [int(v) for v in np.round(arr.ravel() * float(1 << PLAIN_SCALE_BITS))]
        masks = draw_masks(len(raw), modulus=PLAIN_MODULUS, rng=self._rng)
        return [(v + m) % PLAIN_MODULUS for v, m in zip(raw, masks, strict=True)], Masked(
            masks, PLAIN_SCALE_BITS, arr.shape, PLAIN_MODULUS
        )

    def accept(
        self, payload: Any, *, shape: tuple[int, ...], scale_bits: int, bound_bits: int
    ) -> Any:
        if not isinstance(payload, np.ndarray) or payload.shape != shape:
            raise VflError(f"expected a plain array of shape {shape}")
        return payload

    def is_ciphertext(self, payload: Any) -> bool:
        return isinstance(payload, np.ndarray | list)

    @property
    def wire(self) -> Any:
        return None


class PlainOwner(KeyOwner):
    def __init__(self, rng: RandomSource | None = None) -> None:
        self._public = PlainKey(rng)

    @property
    def public(self) -> PeerKey:
        return self._public

    def decrypt_raw(self, c: Any, *, shape: tuple[int, ...]) -> list[int]:
        if not isinstance(c, list) or not all(isinstance(v, int) for v in c):
            raise VflError("plain mode: a masked value must be a list of integers")
        if len(c) != int(np.prod(shape, dtype=np.int64)):
            raise VflError(f"asked to decrypt {len(c)} values, expected shape {shape}")
        return [int(v) % PLAIN_MODULUS for v in c]

    def decrypt(self, c: Any) -> np.ndarray:
        return np.asarray(c, dtype=np.float64)


def _plain_owner(settings: CryptoSettings, rng: RandomSource | None) -> KeyOwner:
    message = "crypto.scheme = 'plain': hetero LR runs WITHOUT encryption; every party sees the other's intermediate values. Debugging and measurement only."
    warnings.warn(message, UserWarning, stacklevel=3)
    logger.warning(message)
    return PlainOwner(rng)


def _paillier_owner(settings: CryptoSettings, rng: RandomSource | None) -> KeyOwner:
    from vfl.hetero_lr._paillier import PaillierOwner

    owner: KeyOwner = PaillierOwner.generate(settings, rng=rng)
    return owner


SCHEMES: dict[SchemeName, Callable[[CryptoSettings, RandomSource | None], KeyOwner]] = {
    SchemeName.PLAIN: _plain_owner,
    SchemeName.PAILLIER: _paillier_owner,
}


def make_owner(settings: CryptoSettings, *, rng: RandomSource | None = None) -> KeyOwner:
    """Generate this party's key pair for the configured scheme (logged with its size)."""
    owner = SCHEMES[settings.scheme](settings, rng)
    logger.info(
        "hetero LR crypto: scheme=%s key_bits=%d", settings.scheme.value, owner.public.key_bits
    )
    return owner


def peer_key(settings: CryptoSettings, payload: Any, *, rng: RandomSource | None = None) -> PeerKey:
    """A peer's public key from what it sent (its key object, or ``None`` in plain mode)."""
    if settings.scheme is SchemeName.PLAIN:
        if payload is not None:
            raise VflError(
                "plain mode: a peer sent a public key; the parties run different crypto settings"
            )
        return PlainKey(rng)
    from vfl.hetero_lr._paillier import PaillierPeerKey

    key: PeerKey = PaillierPeerKey.from_payload(payload, settings, rng=rng)
    return key
