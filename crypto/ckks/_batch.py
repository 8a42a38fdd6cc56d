"""An encrypted ``rows x dim`` float64 batch: encrypt, add, add a plaintext, multiply by a
plaintext matrix, decrypt at the key owner, serialise.

The layout (``crypto.ckks._layout``) packs several columns per ciphertext, so a 256 x 16 batch is
a single fully packed ciphertext (about 81 bytes per value at the default preset), never one
ciphertext per row (about 20 KB per value).

**What the key owner may release** (Li and Micciancio, "On the Security of Homomorphic
Encryption on Approximate Numbers", EUROCRYPT 2021): a raw CKKS decryption ``m + e`` lets anyone
who holds the ciphertext solve ``c0 + c1 * s = Encode(m + e)`` for the secret key ``s``. So the
output of :meth:`CKKSBatch.decrypt` must never be sent to a party that has seen the ciphertext.
Release only :meth:`CKKSBatch.decrypt_for_release`, which stochastically rounds to a coarse grid
(default ``2**-16``) so that the error bits are replaced by fresh randomness, and, in protocols,
only values that the owning party masked before sending them for decryption.

**What the evaluator's product reveals** (circuit privacy): :meth:`CKKSBatch.matmul_plain` adds
zero-sum shares to the per-block partial products, so a decryption reveals only the column sums
``X @ W`` (each block statistically hidden up to ``|partial| / 2**share_bits``), and adds a fresh
public-key encryption to every output ciphertext, so ``c1`` of the result is re-randomised and
``W`` cannot be divided out of it. The decrypted CKKS error still depends slightly on ``W``
(about ``2**-30`` relative); TenSEAL exposes no noise flooding, so callers mask the product with a
uniform full-precision mask before the key owner decrypts it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal as ts

from crypto._timing import timed
from crypto.ckks._context import CKKSContext
from crypto.ckks._layout import (
    Chunk,
    matmul_plain_vectors,
    pack,
    plain_for_add,
    plan,
    product_chunk,
    uniform,
    unpack_into,
    zero_sum_shares,
)
from crypto.ckks._wire import decode_batch, encode_batch
from crypto.errors import CryptoUsageError, InvalidCiphertext
from crypto.random import RandomSource, resolve

__all__ = ["CKKSBatch", "DEFAULT_SHARE_BITS", "DEFAULT_RELEASE_BITS"]

FloatArray = npt.NDArray[np.float64]

#: Magnitude ``2**bits`` of the zero-sum shares that hide per-block partial products.
DEFAULT_SHARE_BITS = 24
#: Grid ``2**-bits`` of :meth:`CKKSBatch.decrypt_for_release`.
DEFAULT_RELEASE_BITS = 16


def _as_matrix(values: Any, *, name: str, limit: float | None = None) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise CryptoUsageError(f"{name} must be a numeric matrix") from None
    if array.ndim != 2:
        raise CryptoUsageError(f"{name} must be 2-D (rows x columns), got {array.ndim}-D")
    if not np.all(np.isfinite(array)):
        raise CryptoUsageError(f"{name} contains NaN or infinity")
    if limit is not None and array.size and float(np.max(np.abs(array))) > limit:
        raise CryptoUsageError(f"{name} has a value above {limit:g} in magnitude (CKKS overflow)")
    return array


class CKKSBatch:
    """Encrypted ``rows x dim`` matrix. Build with :meth:`encrypt` or :meth:`from_bytes`.

    Operations return new batches; the object is immutable. ``batch + other`` adds a batch or a
    plaintext, ``batch @ W`` multiplies by a plaintext matrix (system randomness).
    """

    __slots__ = ("_context", "_shape", "_chunks", "_cts")
    __array_ufunc__ = None  # let ``ndarray + batch`` fall back to our __radd__

    def __init__(
        self,
        *,
        context: CKKSContext,
        shape: tuple[int, int],
        chunks: tuple[Chunk, ...],
        ciphertexts: tuple[tuple[Any, ...], ...],
    ) -> None:
        """Assemble from parts; you probably want :meth:`encrypt` or :meth:`from_bytes`."""
        self._context = context
        self._shape = shape
        self._chunks = chunks
        self._cts = ciphertexts

    @staticmethod
    def max_abs_value(context: CKKSContext) -> float:
        """Largest magnitude accepted by :meth:`encrypt` and :meth:`add_plain`.

        ``2**(first_prime_bits - scale_bits - 2)``: what still fits once every level is used.
        """
        preset = context.preset
        return float(2 ** (preset.coeff_mod_bit_sizes[0] - preset.scale_bits - 2))

    @classmethod
    @timed
    def encrypt(cls, context: CKKSContext, values: Any) -> CKKSBatch:
        """Encrypt a ``rows x dim`` matrix with ``context``'s public key (secret key not needed)."""
        matrix = _as_matrix(values, name="values", limit=cls.max_abs_value(context))
        chunks = plan(matrix.shape[0], matrix.shape[1], slot_count=context.slot_count)
        cts = tuple(
            tuple(ts.ckks_vector(context._ts, vec.tolist()) for vec in pack(matrix, chunk))
            for chunk in chunks
        )
        return cls(
            context=context,
            shape=(matrix.shape[0], matrix.shape[1]),
            chunks=chunks,
            ciphertexts=cts,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, dim)`` of the plaintext matrix."""
        return self._shape

    @property
    def context(self) -> CKKSContext:
        """The context the batch is encrypted under."""
        return self._context

    @property
    def n_ciphertexts(self) -> int:
        """How many CKKS ciphertexts carry the batch."""
        return sum(len(chunk.columns) for chunk in self._chunks)

    def _check_peer(self, other: CKKSBatch) -> None:
        if other._context.fingerprint != self._context.fingerprint:
            raise CryptoUsageError("the two CKKS batches are under different contexts")
        if other._shape != self._shape:
            raise CryptoUsageError(f"shape mismatch: {self._shape} vs {other._shape}")
        if other._chunks != self._chunks:
            raise CryptoUsageError("the two CKKS batches have different slot layouts")

    @timed
    def add(self, other: CKKSBatch) -> CKKSBatch:
        """Homomorphic sum of two batches with the same context, shape and layout."""
        self._check_peer(other)
        cts = tuple(
            tuple(a + b for a, b in zip(mine, theirs, strict=True))
            for mine, theirs in zip(self._cts, other._cts, strict=True)
        )
        return CKKSBatch(
            context=self._context, shape=self._shape, chunks=self._chunks, ciphertexts=cts
        )

    @timed
    def add_plain(self, values: Any) -> CKKSBatch:
        """Add a plaintext matrix (broadcast to :attr:`shape`), e.g. a mask or a bias row."""
        matrix = _as_matrix(
            np.atleast_2d(values), name="plaintext", limit=self.max_abs_value(self._context)
        )
        try:
            matrix = np.broadcast_to(matrix, self._shape)
        except ValueError:
            raise CryptoUsageError(
                f"shape mismatch: plaintext {matrix.shape} vs batch {self._shape}"
            ) from None
        cts = []
        for chunk, row in zip(self._chunks, self._cts, strict=True):
            vecs = plain_for_add(matrix, chunk)
            cts.append(tuple(ct + vec.tolist() for ct, vec in zip(row, vecs, strict=True)))
        return CKKSBatch(
            context=self._context, shape=self._shape, chunks=self._chunks, ciphertexts=tuple(cts)
        )

    @timed
    def matmul_plain(
        self,
        weights: Any,
        *,
        rng: RandomSource | None = None,
        share_bits: int = DEFAULT_SHARE_BITS,
    ) -> CKKSBatch:
        """``X @ W`` for a plaintext ``dim x out`` matrix ``W``: an encrypted ``rows x out`` batch.

        ``Y[:, k] = sum_j X[:, j] * W[j, k]`` computed slot-wise (one plaintext product per input
        ciphertext and output column, no rotations); blocks are summed at decryption and hidden
        by zero-sum shares of magnitude ``2**share_bits`` drawn from ``rng``; each output
        ciphertext is re-randomised with a fresh public-key encryption. Uses one level.
        """
        w = _as_matrix(weights, name="weights")
        if w.shape[0] != self._shape[1]:
            raise CryptoUsageError(f"shape mismatch: batch {self._shape} @ weights {w.shape}")
        if not all(chunk.column_unique for chunk in self._chunks):
            raise CryptoUsageError(
                "matmul_plain needs each column in one block; this batch is already a product"
            )
        if not 0 <= share_bits <= 40:
            raise CryptoUsageError("share_bits must be in [0, 40]")
        source = resolve(rng)
        n_out = w.shape[1]
        chunks, cts = [], []
        try:
            for chunk, row in zip(self._chunks, self._cts, strict=True):
                outputs = []
                for k in range(n_out):
                    acc: Any = None
                    for ct, vec in zip(row, matmul_plain_vectors(w, chunk, k), strict=True):
                        if not vec.any():
                            continue
                        term = ct * (float(vec[0]) if chunk.blocks == 1 else vec.tolist())
                        acc = term if acc is None else acc.add_(term)
                    if acc is None:
                        acc = row[0] * 0.0
                    shares = zero_sum_shares(chunk.blocks, chunk.rows, bits=share_bits, rng=source)
                    fresh = ts.ckks_vector(self._context._ts, shares.reshape(-1).tolist())
                    outputs.append(acc.add_(fresh))
                chunks.append(product_chunk(chunk, n_out))
                cts.append(tuple(outputs))
        except ValueError as exc:
            raise CryptoUsageError(
                f"CKKS evaluation failed ({exc}); preset {self._context.preset.name!r} has depth "
                f"{self._context.preset.depth}"
            ) from None
        return CKKSBatch(
            context=self._context,
            shape=(self._shape[0], n_out),
            chunks=tuple(chunks),
            ciphertexts=tuple(cts),
        )

    def __add__(self, other: Any) -> CKKSBatch:
        if isinstance(other, CKKSBatch):
            return self.add(other)
        return self.add_plain(other)

    def __radd__(self, other: Any) -> CKKSBatch:
        return self.add_plain(other)

    def __matmul__(self, weights: Any) -> CKKSBatch:
        return self.matmul_plain(weights)

    def _secret_key(self, secret_context: CKKSContext | None) -> Any:
        context = self._context if secret_context is None else secret_context
        if context.fingerprint != self._context.fingerprint:
            raise CryptoUsageError("secret_context is not the context of this batch")
        if not context.has_secret_key:
            raise CryptoUsageError(
                "only the key owner can decrypt: this CKKS context has no secret key"
            )
        return context._ts.secret_key()

    @timed
    def decrypt(self, *, secret_context: CKKSContext | None = None) -> FloatArray:
        """The plaintext ``rows x dim`` matrix. Needs the secret key (this batch's context or
        ``secret_context``). Never send this raw output to a party that saw the ciphertext
        (Li-Micciancio key recovery): use :meth:`decrypt_for_release` for that."""
        key = self._secret_key(secret_context)
        out = np.zeros(self._shape, dtype=np.float64)
        for chunk, row in zip(self._chunks, self._cts, strict=True):
            unpack_into(out, [np.asarray(ct.decrypt(key), dtype=np.float64) for ct in row], chunk)
        return out

    @timed
    def decrypt_for_release(
        self,
        *,
        precision_bits: int = DEFAULT_RELEASE_BITS,
        rng: RandomSource | None = None,
        secret_context: CKKSContext | None = None,
    ) -> FloatArray:
        """Decryption safe to share: ``floor(x * 2**p + u) / 2**p`` with fresh ``u ~ U[0, 1)``.

        Stochastic rounding to the grid ``2**-precision_bits`` (unbiased) discards the low bits
        that carry the CKKS error ``e`` and replaces them by randomness, which defeats the exact
        ``Encode(m + e)`` equation of the Li-Micciancio attack. Keep ``2**-precision_bits`` well
        above the decryption error (about ``1e-6``).
        """
        if not 1 <= precision_bits <= 30:
            raise CryptoUsageError("precision_bits must be in [1, 30]")
        values = self.decrypt(secret_context=secret_context)
        scale = float(2**precision_bits)
        noise = uniform(values.shape, rng=resolve(rng))
        return np.floor(values * scale + noise) / scale

    def to_bytes(self) -> bytes:
        """Versioned bytes: header (context fingerprint, digest, layout) + TenSEAL ciphertexts."""
        blobs = [[bytes(ct.serialize()) for ct in row] for row in self._cts]
        return encode_batch(
            fingerprint=self._context.fingerprint,
            shape=self._shape,
            chunks=self._chunks,
            ciphertexts=blobs,
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, context: CKKSContext) -> CKKSBatch:
        """Load :meth:`to_bytes` output under ``context`` (public or secret).

        Raises InvalidCiphertext for malformed, truncated or corrupted bytes and for a batch
        encrypted under another context (fingerprint mismatch).
        """
        wire = decode_batch(bytes(data), slot_count=context.slot_count)
        if wire.fingerprint != context.fingerprint:
            raise InvalidCiphertext("CKKS batch was encrypted under another context")
        cts = []
        for chunk, blobs in zip(wire.chunks, wire.ciphertexts, strict=True):
            row = []
            for blob in blobs:
                try:
                    vector = ts.ckks_vector_from(context._ts, blob)
                    size = vector.size()
                except Exception:  # TenSEAL raises ValueError/RuntimeError on bad streams
                    raise InvalidCiphertext("CKKS batch holds a malformed ciphertext") from None
                if size != chunk.width:
                    raise InvalidCiphertext("CKKS batch ciphertext size does not match its layout")
                row.append(vector)
            cts.append(tuple(row))
        return cls(context=context, shape=wire.shape, chunks=wire.chunks, ciphertexts=tuple(cts))

    def __repr__(self) -> str:
        return (
            f"CKKSBatch(shape={self._shape}, ciphertexts={self.n_ciphertexts}, "
            f"preset={self._context.preset.name!r})"
        )
