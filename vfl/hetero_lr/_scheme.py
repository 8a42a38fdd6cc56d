"""The homomorphic backends of hetero LR, from a registry: ``paillier`` and ``plain``.

The protocol code does arithmetic on "ciphertexts" with ``+``, ``*`` and ``X.T @ c``, which both a
Paillier ``EncryptedArray`` and a plain ``numpy`` array support, so the same protocol runs in both
modes. What differs is collected here:

* :class:`KeyOwner` -- this party's own key pair: ``encrypt``, ``decrypt_raw`` (exact integers at
  the fixed-point scale, for masked reveals) and the public part to send to peers.
* :class:`PeerKey` -- a peer's public key: ``encrypt``, ``rerandomize`` and ``mask``.

Masked reveal (every decryption done for another party): the holder of ``[[v]]`` draws integer
masks ``R`` uniform in ``[0, 2^(b + 40))`` where ``2^b`` bounds ``|v|`` at the ciphertext's
fixed-point scale, sends ``[[v + R]]`` (re-randomised), the key owner returns the exact integer
``v + R`` and the holder subtracts ``R``. ``R`` hides ``v`` statistically: the two distributions
of ``v + R`` for any two admissible ``v`` differ by at most ``2^-40`` in statistical distance.

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
    "KeyOwner",
    "Masked",
    "PeerKey",
    "SCHEMES",
    "make_owner",
    "peer_key",
]

logger = logging.getLogger(__name__)

MASK_SLACK_BITS = 40
# |value| < 2^GRADIENT_BOUND_BITS for every value revealed under a mask (checked after unmasking).
GRADIENT_BOUND_BITS = 32
PLAIN_SCALE_BITS = 48


@dataclass(frozen=True)
class Masked:
    """What the holder keeps after masking: the masks and the fixed-point scale of the values."""

    masks: tuple[int, ...]
    scale_bits: int
    shape: tuple[int, ...]

    def unmask(self, revealed: list[int]) -> np.ndarray:
        """Exact ``v = (v + R) - R`` scaled back to floats; checks the bound the masks assumed."""
        if len(revealed) != len(self.masks):
            raise VflError(
                f"masked reveal returned {len(revealed)} values, expected {len(self.masks)}"
            )
        values = [int(r) - m for r, m in zip(revealed, self.masks, strict=True)]
        limit = 1 << (GRADIENT_BOUND_BITS + self.scale_bits)
        if any(abs(v) >= limit for v in values):
            raise VflError(
                f"a revealed value exceeds the mask bound 2^{GRADIENT_BOUND_BITS}; masks may not hide it"
            )
        scale = 1 << self.scale_bits
        return np.array([v / scale for v in values], dtype=np.float64).reshape(self.shape)


def draw_masks(count: int, *, scale_bits: int, rng: RandomSource) -> tuple[int, ...]:
    """Masks uniform in [0, 2^(GRADIENT_BOUND_BITS + scale_bits + MASK_SLACK_BITS))."""
    upper = 1 << (GRADIENT_BOUND_BITS + scale_bits + MASK_SLACK_BITS)
    return tuple(rng.randbelow(upper) for _ in range(count))


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
        """``([[c + R]], Masked)``: the masked, re-randomised ciphertext to send and the masks to keep."""

    def start_precompute(self, *, per_batch: int, idle: threading.Event) -> None:  # noqa: B027
        """Compute randomness for about two batches of ``per_batch`` values while ``idle``."""

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
    def decrypt_raw(self, c: Any) -> list[int]:
        """Exact signed integers at the ciphertext's fixed-point scale (for masked reveals)."""

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
        masks = draw_masks(len(raw), scale_bits=PLAIN_SCALE_BITS, rng=self._rng)
        return [v + m for v, m in zip(raw, masks, strict=True)], Masked(
            masks, PLAIN_SCALE_BITS, arr.shape
        )

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

    def decrypt_raw(self, c: Any) -> list[int]:
        if not isinstance(c, list):
            raise VflError("plain mode: a masked value must be a list of integers")
        return [int(v) for v in c]

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
