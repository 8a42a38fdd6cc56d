"""The interactive layer's encryption backends, chosen by :class:`Scheme` from a registry.

Each party owns one :class:`KeyOwner` (its own key pair: it encrypts, and decrypts what the peer
masked) and builds one :class:`Evaluator` per peer from the peer's public key (it multiplies the
peer's ciphertexts by plaintext matrices and adds plaintext masks). The protocol in
:mod:`vfl.split_nn._interactive` only uses these operations:

* ``[[X]] @ W`` (``rows x d`` by ``d x m``), then :meth:`Evaluator.mask`: add a fresh mask and
  re-randomise before sending; the key owner's :meth:`KeyOwner.reveal` decrypts, adds its own term
  and replies; :meth:`Masked.unmask` removes the mask;
* ``[[X^T]] @ D`` (``d x rows`` by ``rows x m``): the weight gradient ``h^T delta``. Neither
  Paillier's packing nor CKKS has rotations, so the owner sends ``[[X^T]]`` as well
  (``encrypt_transposed``).

Masks: ``plain`` and ``ckks`` use floats uniform in ``[-R, R]`` (``crypto.mask``); ``paillier``
packs 17 signed values per 2048-bit ciphertext (:mod:`vfl.split_nn._packed`) and masks each slot
with an integer carrying 40 bits of slack over the value's bound; its replies are exact integers.
CKKS decryptions sent to a peer use :meth:`crypto.ckks.CKKSBatch.decrypt_for_release`
(stochastic rounding to ``2**-release_bits``, against the Li-Micciancio key-recovery attack).
Paillier ciphertexts computed by the evaluator are re-randomised (DJN obfuscators) before they go
back, so the key owner cannot read the evaluator's plaintext multipliers out of the ciphertext
randomness; CKKS ``matmul_plain`` re-randomises itself.
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
from vfl.split_nn._packed import (
    BATCH_BITS,
    EMBEDDING_BITS,
    FRACTION_BITS,
    GRADIENT_BITS,
    SLOT_BITS,
    WEIGHT_BITS,
    WIDTH_BITS,
    PackedMatrix,
    ints_from_wire,
    ints_to_wire,
)
from vfl.split_nn._random import uniform

__all__ = ["KeyOwner", "Evaluator", "Masked", "make_key_owner", "make_evaluator"]

FloatArray = npt.NDArray[np.float64]


class Masked(abc.ABC):
    """The evaluator's handle on a masked result it sent: removes the mask from the reply."""

    @abc.abstractmethod
    def unmask(self, reply: Any) -> FloatArray:
        """``reply - mask`` as floats: the value plus the key owner's own term."""


class KeyOwner(abc.ABC):
    """This party's key pair for one scheme."""

    @property
    @abc.abstractmethod
    def public(self) -> Any:
        """What to send to peers so they can evaluate (public key / public context / None)."""

    @abc.abstractmethod
    def encrypt(self, x: FloatArray) -> Any:
        """``[[x]]`` for a ``rows x m`` cut-layer gradient the peer multiplies by ``A^T``."""

    def encrypt_forward(self, h: FloatArray) -> Any:
        """``[[h]]`` for a ``rows x d`` embedding the peer multiplies by ``W_G``."""
        return self.encrypt(h)

    def encrypt_transposed(self, h: FloatArray) -> Any:
        """``[[h^T]]``: it serves the weight gradient ``h^T delta``."""
        return self.encrypt(np.ascontiguousarray(h.T))

    @abc.abstractmethod
    def reveal(self, ct: Any, plus: FloatArray) -> Any:
        """Decrypt the peer's masked result, add this party's own term ``plus``, return the reply.

        The reply is what goes back to the evaluator (it still carries the evaluator's mask).
        """


class Evaluator(abc.ABC):
    """Operations on a peer's ciphertexts (public key only)."""

    @abc.abstractmethod
    def matmul(self, ct: Any, w: FloatArray, *, rows: int) -> Any:
        """``[[X @ W]]`` for the peer's ``[[X]]`` (``rows x w.shape[0]``)."""

    @abc.abstractmethod
    def weight_grad(self, ct_t: Any, delta: FloatArray, *, dim: int) -> Any:
        """``[[X^T @ delta]]`` (``dim x m``) from the peer's ``[[X^T]]``."""

    @abc.abstractmethod
    def mask(self, ct: Any) -> tuple[Any, Masked]:
        """Add a fresh mask and re-randomise: ``(what to send, handle to unmask the reply)``."""


# -- float masks (plain and CKKS) -----------------------------------------------------------------
class _FloatMasked(Masked):
    """Uniform ``[-R, R]`` float mask (``crypto.mask``)."""

    def __init__(self, eps: FloatArray) -> None:
        self._eps = eps

    def unmask(self, reply: Any) -> FloatArray:
        v = np.asarray(reply, dtype=np.float64)
        if v.shape != self._eps.shape:
            raise VflError(f"peer replied with shape {v.shape}, expected {self._eps.shape}")
        out: FloatArray = v - self._eps
        return out


def _float_mask(
    shape: tuple[int, int], config: CryptoConfig, rng: RandomSource | None
) -> FloatArray:
    return uniform(shape, bound=config.mask, rng=rng)


# -- plain ----------------------------------------------------------------------------------------
class _PlainOwner(KeyOwner):
    @property
    def public(self) -> Any:
        return None

    def encrypt(self, x: FloatArray) -> Any:
        return np.array(x, dtype=np.float64)

    def reveal(self, ct: Any, plus: FloatArray) -> Any:
        return np.asarray(ct, dtype=np.float64) + plus


class _PlainEvaluator(Evaluator):
    def __init__(self, config: CryptoConfig, rng: RandomSource | None) -> None:
        self._config = config
        self._rng = rng

    def matmul(self, ct: Any, w: FloatArray, *, rows: int) -> Any:
        return np.asarray(ct, dtype=np.float64) @ w

    def weight_grad(self, ct_t: Any, delta: FloatArray, *, dim: int) -> Any:
        return np.asarray(ct_t, dtype=np.float64) @ delta

    def mask(self, ct: Any) -> tuple[Any, Masked]:
        arr = np.asarray(ct, dtype=np.float64)
        eps = _float_mask(arr.shape, self._config, self._rng)
        return arr + eps, _FloatMasked(eps)


# -- Paillier (packed, see vfl.split_nn._packed) --------------------------------------------------
class _IntMasked(Masked):
    """Integer masks with 40 bits of slack; the reply is exact integers at ``2^-scale``."""

    def __init__(self, masks: list[int], shape: tuple[int, int], scale: int) -> None:
        self._masks = masks
        self._shape = shape
        self._scale = scale

    def unmask(self, reply: Any) -> FloatArray:
        ints = ints_from_wire(reply, self._shape)
        values = [float(v - m) for v, m in zip(ints, self._masks, strict=True)]
        out: FloatArray = np.ldexp(np.asarray(values, dtype=np.float64), -self._scale)
        return out.reshape(self._shape)


class _PaillierOwner(KeyOwner):
    def __init__(self, config: CryptoConfig, rng: RandomSource | None) -> None:
        self._pub, self._priv = generate_keypair(
            config.key_bits, insecure_allow_small_keys=config.insecure_allow_small_keys
        )
        self._rng = rng
        self._processes = config.processes

    @property
    def public(self) -> Any:
        return self._pub

    def _encrypt(self, x: FloatArray, *, bits: int, what: str) -> Any:
        return PackedMatrix.encrypt(
            self._pub,
            x,
            bits=bits,
            slot_bits=SLOT_BITS,
            rng=self._rng,
            what=what,
            processes=self._processes,
        ).to_wire()

    def encrypt(self, x: FloatArray) -> Any:
        return self._encrypt(x, bits=GRADIENT_BITS, what="cut-layer gradient")

    def encrypt_forward(self, h: FloatArray) -> Any:
        return self._encrypt(h, bits=EMBEDDING_BITS, what="embedding")

    def encrypt_transposed(self, h: FloatArray) -> Any:
        return self._encrypt(np.ascontiguousarray(h.T), bits=EMBEDDING_BITS, what="embedding")

    def reveal(self, ct: Any, plus: FloatArray) -> Any:
        rows, cols = plus.shape
        packed = PackedMatrix.from_wire(
            ct,
            self._pub,
            rows=rows,
            cols=cols,
            slot_bits=SLOT_BITS,
            scale=2 * FRACTION_BITS,
            value_bits=SLOT_BITS - 2,
        )
        ints = packed.decrypt_ints(self._priv, processes=self._processes)
        own = np.rint(np.ldexp(np.asarray(plus, dtype=np.float64), 2 * FRACTION_BITS))
        if not np.all(np.isfinite(own)):
            raise VflError("own term is not finite")
        total = [v + int(o) for v, o in zip(ints, own.reshape(-1).tolist(), strict=True)]
        return ints_to_wire(total, (rows, cols))


class _PaillierEvaluator(Evaluator):
    def __init__(self, public: Any, config: CryptoConfig, rng: RandomSource | None) -> None:
        if not isinstance(public, PaillierPublicKey):
            raise VflError("peer sent no Paillier public key")
        if public.bits < config.key_bits and not config.insecure_allow_small_keys:
            raise VflError(f"peer sent a {public.bits}-bit Paillier key, below crypto.key_bits")
        self._pub = public
        self._rng = rng
        self._processes = config.processes

    def _wrap(self, ct: Any, *, rows: int, cols: int) -> PackedMatrix:
        return PackedMatrix.from_wire(
            ct,
            self._pub,
            rows=rows,
            cols=cols,
            slot_bits=SLOT_BITS,
            scale=FRACTION_BITS,
            value_bits=max(EMBEDDING_BITS, GRADIENT_BITS) + FRACTION_BITS,
        )

    def matmul(self, ct: Any, w: FloatArray, *, rows: int) -> Any:
        if rows >> BATCH_BITS or w.shape[0] >> WIDTH_BITS or w.shape[1] >> WIDTH_BITS:
            raise VflError("packed Paillier layer: batch or layer width too large")
        packed = self._wrap(ct, rows=rows, cols=w.shape[0])
        return packed.matmul(w, bits=WEIGHT_BITS, processes=self._processes)

    def weight_grad(self, ct_t: Any, delta: FloatArray, *, dim: int) -> Any:
        if delta.shape[0] >> BATCH_BITS or dim >> WIDTH_BITS:
            raise VflError("packed Paillier layer: batch or layer width too large")
        packed = self._wrap(ct_t, rows=dim, cols=delta.shape[0])
        return packed.matmul(delta, bits=GRADIENT_BITS, processes=self._processes)

    def mask(self, ct: Any) -> tuple[Any, Masked]:
        if not isinstance(ct, PackedMatrix):
            raise VflError("mask expects a packed result of this evaluator")
        masked, masks = ct.mask(rng=self._rng, processes=self._processes)
        return masked.to_wire(), _IntMasked(masks, ct.shape, ct.scale)


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

    def reveal(self, ct: Any, plus: FloatArray) -> Any:
        if not isinstance(ct, CKKSBatch):
            raise VflError("peer returned something other than a CKKS batch")
        out = ct.decrypt_for_release(
            precision_bits=self._bits, rng=self._rng, secret_context=self._ctx
        )
        if out.shape != plus.shape:
            raise VflError(f"peer returned a {out.shape} CKKS batch, expected {plus.shape}")
        return out + plus


class _CKKSEvaluator(Evaluator):
    def __init__(self, public: Any, config: CryptoConfig, rng: RandomSource | None) -> None:
        if not isinstance(public, CKKSContext):
            raise VflError("peer sent no CKKS context")
        if public.has_secret_key:
            raise VflError("peer sent a CKKS context with its secret key")
        self._config = config
        self._rng = rng

    def matmul(self, ct: Any, w: FloatArray, *, rows: int) -> Any:
        if not isinstance(ct, CKKSBatch) or ct.shape != (rows, w.shape[0]):
            raise VflError(f"peer sent a CKKS batch of shape {getattr(ct, 'shape', None)}")
        return ct.matmul_plain(w, rng=self._rng)

    def weight_grad(self, ct_t: Any, delta: FloatArray, *, dim: int) -> Any:
        if not isinstance(ct_t, CKKSBatch) or ct_t.shape != (dim, delta.shape[0]):
            raise VflError("CKKS weight gradient needs the transposed batch [[h^T]]")
        return ct_t.matmul_plain(delta, rng=self._rng)

    def mask(self, ct: Any) -> tuple[Any, Masked]:
        eps = _float_mask(tuple(ct.shape), self._config, self._rng)
        return ct.add_plain(eps), _FloatMasked(eps)


_OWNERS: dict[Scheme, Callable[[CryptoConfig, RandomSource | None], KeyOwner]] = {
    Scheme.PLAIN: lambda config, rng: _PlainOwner(),
    Scheme.PAILLIER: _PaillierOwner,
    Scheme.CKKS: _CKKSOwner,
}
_EVALUATORS: dict[Scheme, Callable[[Any, CryptoConfig, RandomSource | None], Evaluator]] = {
    Scheme.PLAIN: lambda public, config, rng: _PlainEvaluator(config, rng),
    Scheme.PAILLIER: _PaillierEvaluator,
    Scheme.CKKS: _CKKSEvaluator,
}


def make_key_owner(config: CryptoConfig, *, rng: RandomSource | None = None) -> KeyOwner:
    """Fresh keys for ``config.scheme`` (Paillier ``key_bits``, CKKS ``ckks_preset``)."""
    return _OWNERS[config.scheme](config, rng)


def make_evaluator(
    config: CryptoConfig, public: Any, *, rng: RandomSource | None = None
) -> Evaluator:
    """Evaluator on a peer's ciphertexts from the public part it sent."""
    return _EVALUATORS[config.scheme](public, config, rng)
