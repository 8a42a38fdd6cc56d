"""The interactive layer's encryption backends, chosen by :class:`Scheme` from a registry.

Each party owns one :class:`KeyOwner` (its own key pair: it encrypts, and decrypts what the peer
masked) and builds one :class:`Evaluator` per peer from the peer's public key (it multiplies the
peer's ciphertexts by plaintext matrices and adds plaintext masks). The protocol in
:mod:`vfl.split_nn._interactive` only uses these operations:

* ``[[X]] @ W`` (``rows x d`` by ``d x m``); ``[[X]] + M``;
* ``[[X]]^T @ D`` (``d x rows`` by ``rows x m``): the weight gradient ``h^T delta``. Paillier
  transposes the ciphertext array; CKKS has no rotations, so the owner also sends ``[[X^T]]``
  (a ``d x rows`` batch) and the evaluator multiplies that (``encrypt_pair``).

Decryptions sent to a peer: Paillier decryptions are exact and carry no key material; CKKS ones
use :meth:`crypto.ckks.CKKSBatch.decrypt_for_release` (stochastic rounding to ``2**-release_bits``,
against the Li-Micciancio key-recovery attack). Paillier ciphertexts computed by the evaluator are
re-randomised (DJN obfuscators) before they go back, so the key owner cannot read the evaluator's
plaintext multipliers out of the ciphertext randomness; CKKS ``matmul_plain`` re-randomises itself.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from crypto.ckks import CKKSBatch, CKKSContext
from crypto.paillier import PaillierPublicKey, generate_keypair
from crypto.random import RandomSource
from vfl.errors import VflError
from vfl.split_nn._config import CryptoConfig, Scheme

__all__ = ["KeyOwner", "Evaluator", "make_key_owner", "make_evaluator"]

FloatArray = npt.NDArray[np.float64]


class KeyOwner(abc.ABC):
    """This party's key pair for one scheme."""

    @property
    @abc.abstractmethod
    def public(self) -> Any:
        """What to send to peers so they can evaluate (public key / public context / None)."""

    @abc.abstractmethod
    def encrypt(self, x: FloatArray) -> Any:
        """``[[x]]`` for a ``rows x d`` matrix."""

    def encrypt_pair(self, x: FloatArray) -> tuple[Any, Any]:
        """``([[x]], [[x^T]] or None)``: the transpose only where the scheme needs it."""
        return self.encrypt(x), None

    @abc.abstractmethod
    def decrypt(self, ct: Any) -> FloatArray:
        """Decrypt a masked value for release to the peer that computed it."""


class Evaluator(abc.ABC):
    """Operations on a peer's ciphertexts (public key only)."""

    @abc.abstractmethod
    def matmul(self, ct: Any, w: FloatArray) -> Any:
        """``[[X @ W]]``."""

    @abc.abstractmethod
    def add_plain(self, ct: Any, m: FloatArray) -> Any:
        """``[[X + M]]``, re-randomised where the scheme needs it before sending."""

    @abc.abstractmethod
    def weight_grad(self, ct: Any, ct_t: Any, delta: FloatArray) -> Any:
        """``[[X^T @ delta]]`` from ``[[X]]`` (and ``[[X^T]]`` when the scheme sent one)."""


# -- plain ----------------------------------------------------------------------------------------
class _PlainOwner(KeyOwner):
    @property
    def public(self) -> Any:
        return None

    def encrypt(self, x: FloatArray) -> Any:
        return np.array(x, dtype=np.float64)

    def decrypt(self, ct: Any) -> FloatArray:
        return np.asarray(ct, dtype=np.float64)


class _PlainEvaluator(Evaluator):
    def matmul(self, ct: Any, w: FloatArray) -> Any:
        return np.asarray(ct, dtype=np.float64) @ w

    def add_plain(self, ct: Any, m: FloatArray) -> Any:
        return np.asarray(ct, dtype=np.float64) + m

    def weight_grad(self, ct: Any, ct_t: Any, delta: FloatArray) -> Any:
        return np.asarray(ct, dtype=np.float64).T @ delta


# -- Paillier -------------------------------------------------------------------------------------
class _PaillierOwner(KeyOwner):
    def __init__(self, config: CryptoConfig, rng: RandomSource | None) -> None:
        self._pub, self._priv = generate_keypair(
            config.key_bits, insecure_allow_small_keys=config.insecure_allow_small_keys
        )
        self._rng = rng

    @property
    def public(self) -> Any:
        return self._pub

    def encrypt(self, x: FloatArray) -> Any:
        return self._pub.encrypt(x, rng=self._rng, obfuscator="djn")

    def decrypt(self, ct: Any) -> FloatArray:
        if getattr(ct, "public_key", None) != self._pub:
            raise VflError("peer returned a ciphertext under another Paillier key")
        return np.asarray(self._priv.decrypt(ct), dtype=np.float64)


class _PaillierEvaluator(Evaluator):
    def __init__(self, public: Any, rng: RandomSource | None) -> None:
        if not isinstance(public, PaillierPublicKey):
            raise VflError("peer sent no Paillier public key")
        self._pub = public
        self._rng = rng

    def matmul(self, ct: Any, w: FloatArray) -> Any:
        return ct @ w

    def add_plain(self, ct: Any, m: FloatArray) -> Any:
        return (ct + m).rerandomize(rng=self._rng, obfuscator="djn")

    def weight_grad(self, ct: Any, ct_t: Any, delta: FloatArray) -> Any:
        return (delta.T @ ct).T


# -- CKKS -----------------------------------------------------------------------------------------
class _CKKSOwner(KeyOwner):
    def __init__(self, config: CryptoConfig, rng: RandomSource | None) -> None:
        self._ctx = CKKSContext.generate(preset=config.ckks_preset)
        self._public = self._ctx.public_context()
        self._bits = config.release_bits
        self._rng = rng

    @property
    def public(self) -> Any:
        return self._public

    def encrypt(self, x: FloatArray) -> Any:
        return CKKSBatch.encrypt(self._ctx, x)

    def encrypt_pair(self, x: FloatArray) -> tuple[Any, Any]:
        return CKKSBatch.encrypt(self._ctx, x), CKKSBatch.encrypt(
            self._ctx, np.ascontiguousarray(x.T)
        )

    def decrypt(self, ct: Any) -> FloatArray:
        if not isinstance(ct, CKKSBatch):
            raise VflError("peer returned something other than a CKKS batch")
        return ct.decrypt_for_release(
            precision_bits=self._bits, rng=self._rng, secret_context=self._ctx
        )


class _CKKSEvaluator(Evaluator):
    def __init__(self, public: Any, rng: RandomSource | None) -> None:
        if not isinstance(public, CKKSContext):
            raise VflError("peer sent no CKKS context")
        if public.has_secret_key:
            raise VflError("peer sent a CKKS context with its secret key")
        self._rng = rng

    def matmul(self, ct: Any, w: FloatArray) -> Any:
        return ct.matmul_plain(w, rng=self._rng)

    def add_plain(self, ct: Any, m: FloatArray) -> Any:
        return ct.add_plain(m)

    def weight_grad(self, ct: Any, ct_t: Any, delta: FloatArray) -> Any:
        if ct_t is None:
            raise VflError("CKKS weight gradient needs the transposed batch [[h^T]]")
        return ct_t.matmul_plain(delta, rng=self._rng)


_OWNERS: dict[Scheme, Callable[[CryptoConfig, RandomSource | None], KeyOwner]] = {
    Scheme.PLAIN: lambda config, rng: _PlainOwner(),
    Scheme.PAILLIER: _PaillierOwner,
    Scheme.CKKS: _CKKSOwner,
}
_EVALUATORS: dict[Scheme, Callable[[Any, RandomSource | None], Evaluator]] = {
    Scheme.PLAIN: lambda public, rng: _PlainEvaluator(),
    Scheme.PAILLIER: _PaillierEvaluator,
    Scheme.CKKS: _CKKSEvaluator,
}


def make_key_owner(config: CryptoConfig, *, rng: RandomSource | None = None) -> KeyOwner:
    """Fresh keys for ``config.scheme`` (Paillier ``key_bits``, CKKS ``ckks_preset``)."""
    return _OWNERS[config.scheme](config, rng)


def make_evaluator(scheme: Scheme, public: Any, *, rng: RandomSource | None = None) -> Evaluator:
    """Evaluator on a peer's ciphertexts from the public part it sent."""
    return _EVALUATORS[scheme](public, rng)
