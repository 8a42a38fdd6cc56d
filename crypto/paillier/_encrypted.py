"""``EncryptedArray``: a numpy-shaped array of Paillier ciphertexts under one key and one scale.

Homomorphic identities used (``g = n + 1``, all modulo ``n^2``; Paillier 1999, section 5):

* ``E(a) * E(b) = E(a + b)``; ``E(a) * g^b = E(a + b)`` with ``g^b = 1 + b*n``;
* ``E(a)^k = E(k*a)``; for ``k < 0`` this is ``(E(a)^(-1))^|k|`` (one inverse, short exponent);
* ``prod_k E(v_k)^(x_k) = E(sum_k x_k v_k)`` (matrix products, by multi-exponentiation).

Scale and bound: every entry holds ``v = round(x * 2**scale)`` with ``|v| <= bound``. Both are
public metadata the holder tracks locally; neither travels on the wire (:mod:`._serial`): an
array read from bytes is *undeclared* (its scale unknown, its bound ``max_int``) until the
receiver declares the scale and bound the protocol fixes (:meth:`EncryptedArray.assume`), so a
peer can neither leak a plaintext statistic through them nor make the receiver trust its own.
``encrypt(x, bound=B)`` sets a public bound ``B`` (and refuses values above it) instead of the
data-dependent ``max |v|``. Adding
aligns scales (multiplying the lower one by ``2**d``) and adds bounds; multiplying by a plaintext
encoded at scale ``t`` adds ``t`` to the scale and multiplies the bound by the largest ``|k|``;
``A @ enc`` multiplies it by ``max_i sum_l |A_il|``; ``sum`` by the number of summands. Any
result with ``bound > max_int = n // 3 - 1`` raises :class:`CryptoUsageError` before computing:
an overflow is never silent. Integer multipliers have scale 0 (exact); float multipliers use the
array's :class:`FixedPointEncoding` precision (32 bits by default).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto._timing import timed
from crypto.errors import CryptoUsageError, InvalidCiphertext
from crypto.paillier._encoding import FixedPointEncoding, decode_ints, encode_ints, max_abs
from crypto.paillier._multiexp import left_matmul
from crypto.random import RandomSource

if TYPE_CHECKING:
    from crypto.paillier._keys import PaillierPublicKey
    from crypto.paillier._pool import ObfuscatorPool

__all__ = ["EncryptedArray", "encrypt_array", "decode_plaintexts"]

_POWMOD = np.frompyfunc(gmpy2.powmod, 3, 1)
_INVERT = np.frompyfunc(gmpy2.invert, 2, 1)


def _object_array(values: list[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


def encrypt_array(
    public_key: PaillierPublicKey,
    x: Any,
    *,
    encoding: FixedPointEncoding,
    obfuscate: Callable[[int], list[Any]],
    bound: int | None = None,
) -> EncryptedArray:
    """Encode ``x`` and encrypt each value as ``(1 + (v mod n)*n) * obfuscator mod n^2``.

    ``bound``: a public bound on ``|v|`` (at the encoding's scale) that the array carries instead
    of the data-dependent ``max |v|``; a value above it raises :class:`CryptoUsageError`.
    """
    ints = encode_ints(x, scale=encoding.precision_bits)
    largest = max_abs(ints)
    if bound is not None:
        if largest > bound:
            raise CryptoUsageError(
                f"a value exceeds the declared bound of {bound.bit_length()} bits at precision "
                f"{encoding.precision_bits}"
            )
    else:
        bound = largest
    if bound > public_key.max_int:
        raise CryptoUsageError(
            f"value does not fit the plaintext space: needs {bound.bit_length()} bits at precision "
            f"{encoding.precision_bits}, max {public_key.max_int.bit_length()}"
        )
    n, nsq = public_key.n, public_key.nsquare
    flat = ints.reshape(-1).tolist()
    obfs = obfuscate(len(flat))
    cts = [(n * (v % n) + 1) * o % nsq for v, o in zip(flat, obfs, strict=True)]
    return EncryptedArray(
        public_key,
        _object_array(cts, ints.shape),
        scale=encoding.precision_bits,
        bound=bound,
        encoding=encoding,
    )


def decode_plaintexts(
    public_key: PaillierPublicKey, ms: list[Any], *, scale: int, shape: tuple[int, ...]
) -> npt.NDArray[np.float64]:
    """Map plaintexts in ``[0, n)`` to signed values and divide by ``2**scale``.

    A plaintext in the gap ``(max_int, n - max_int)`` cannot come from a correct computation
    (bounds are tracked), so it raises :class:`InvalidCiphertext`.
    """
    n, max_int = int(public_key.n), public_key.max_int
    signed = []
    for m in ms:
        m = int(m)
        if m <= max_int:
            signed.append(m)
        elif m >= n - max_int:
            signed.append(m - n)
        else:
            raise InvalidCiphertext("decrypted value outside the encoding range")
    return decode_ints(signed, scale=scale, shape=shape)


def _check_bound(public_key: PaillierPublicKey, bound: int, scale: int | None) -> None:
    """Raise :class:`CryptoUsageError` when ``bound > max_int`` (the result could wrap)."""
    if bound > public_key.max_int:
        raise CryptoUsageError(
            f"result may overflow the plaintext space: bound of {bound.bit_length()} bits at scale "
            f"{scale} > max {public_key.max_int.bit_length()} bits"
        )


class EncryptedArray:
    """Paillier ciphertexts with a numpy shape, one public key, one fixed-point scale.

    Make one with :meth:`PaillierPublicKey.encrypt`, :meth:`from_bytes` or :meth:`from_phe`.
    """

    __slots__ = ("_key", "_c", "_scale", "_bound", "_encoding")
    __array_ufunc__ = None  # make ``ndarray + enc`` call our reflected operators

    def __init__(
        self,
        public_key: PaillierPublicKey,
        ciphertexts: npt.NDArray[Any],
        *,
        scale: int | None,
        bound: int,
        encoding: FixedPointEncoding | None = None,
    ) -> None:
        _check_bound(public_key, bound, scale)
        self._key = public_key
        self._c = ciphertexts
        self._scale = scale
        self._bound = bound
        self._encoding = encoding or FixedPointEncoding()

    def _new(
        self, cts: npt.NDArray[Any], *, scale: int | None = None, bound: int | None = None
    ) -> EncryptedArray:
        """Same key and encoding; scale and bound kept unless given (shape ops keep undeclared)."""
        return EncryptedArray(
            self._key,
            cts,
            scale=self._scale if scale is None else scale,
            bound=self._bound if bound is None else bound,
            encoding=self._encoding,
        )

    # -- attributes ----------------------------------------------------------------------------
    @property
    def public_key(self) -> PaillierPublicKey:
        return self._key

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._c.shape)

    @property
    def ndim(self) -> int:
        return int(self._c.ndim)

    @property
    def size(self) -> int:
        return int(self._c.size)

    @property
    def scale(self) -> int:
        """Fixed-point scale in bits: entries hold ``round(x * 2**scale)``.

        Raises :class:`CryptoUsageError` for an undeclared array (read from bytes): the receiver
        declares the protocol's scale with :meth:`assume` first.
        """
        if self._scale is None:
            raise CryptoUsageError(
                "the ciphertexts' scale is undeclared: call assume(scale=..., bound=...) with the "
                "values the protocol fixes"
            )
        return self._scale

    @property
    def declared(self) -> bool:
        """False for an array read from bytes whose scale and bound are not yet declared."""
        return self._scale is not None

    def assume(
        self, *, scale: int, bound: int, encoding: FixedPointEncoding | None = None
    ) -> EncryptedArray:
        """The same ciphertexts with the public ``scale`` and ``bound`` the receiver knows.

        The receiver of an array sets them from the protocol configuration, never from the
        sender (the wire carries neither). ``bound`` is not checked against the plaintexts
        (only the key owner could); a protocol that decrypts a peer's values masks them and
        checks the bound after unmasking.
        """
        if scale < 0:
            raise CryptoUsageError(f"scale must be >= 0, got {scale}")
        return EncryptedArray(
            self._key, self._c, scale=scale, bound=bound, encoding=encoding or self._encoding
        )

    @property
    def bound(self) -> int:
        """Upper bound on ``|round(x * 2**scale)|`` over all entries."""
        return self._bound

    @property
    def encoding(self) -> FixedPointEncoding:
        """Encoding used for float multipliers and plaintext operands."""
        return self._encoding

    def raw_ciphertexts(self) -> list[Any]:
        """The ciphertexts as a flat list of ``gmpy2.mpz`` in C order."""
        return list(self._c.reshape(-1).tolist())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d EncryptedArray")
        return self.shape[0]

    def __repr__(self) -> str:
        scale = "undeclared" if self._scale is None else self._scale
        return (
            f"EncryptedArray(shape={self.shape}, scale={scale}, key={self._key.fingerprint[:16]})"
        )

    # -- shape operations ----------------------------------------------------------------------
    def __getitem__(self, idx: Any) -> EncryptedArray:
        if isinstance(idx, EncryptedArray):
            raise CryptoUsageError("cannot index with an EncryptedArray")
        sub = self._c[idx]
        if not isinstance(sub, np.ndarray):
            sub = _object_array([sub], ())
        return self._new(sub)

    def reshape(self, *shape: Any) -> EncryptedArray:
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        try:
            return self._new(self._c.reshape(shape))
        except ValueError as exc:
            raise CryptoUsageError(f"cannot reshape {self.shape} to {shape}") from exc

    def ravel(self) -> EncryptedArray:
        return self._new(self._c.reshape(-1))

    def transpose(self, *axes: int) -> EncryptedArray:
        return self._new(self._c.transpose(*axes) if axes else self._c.T)

    @property
    def T(self) -> EncryptedArray:  # noqa: N802 (numpy's name)
        return self._new(self._c.T)

    # -- key and scale helpers -----------------------------------------------------------------
    def _check_same_key(self, other: EncryptedArray) -> None:
        if other._key != self._key:
            raise CryptoUsageError("operands are encrypted under different keys")

    @timed
    def rescaled(self, scale: int) -> EncryptedArray:
        """The same values at a scale ``>= self.scale``: ``E(v)^(2^d)`` (exact, short exponent)."""
        d = scale - self.scale
        if d < 0:
            raise CryptoUsageError("cannot lower the scale of ciphertexts")
        if d == 0:
            return self
        factor = gmpy2.mpz(1) << d
        cts = _POWMOD(self._c, factor, self._key.nsquare)
        return self._new(np.asarray(cts, dtype=object), scale=scale, bound=self._bound << d)

    def _plain_ints(self, other: Any, *, scale: int) -> npt.NDArray[Any]:
        if isinstance(other, EncryptedArray):
            raise CryptoUsageError("expected a plaintext operand")
        from crypto.paillier._packing import PackedEncryptedArray

        if isinstance(other, PackedEncryptedArray):
            raise CryptoUsageError("cannot mix EncryptedArray and PackedEncryptedArray")
        return encode_ints(other, scale=scale)

    def _broadcast(self, op: Callable[[], Any]) -> npt.NDArray[Any]:
        try:
            return np.asarray(op(), dtype=object)
        except ValueError as exc:
            raise CryptoUsageError(f"shape mismatch: {exc}") from exc

    # -- addition and subtraction --------------------------------------------------------------
    def _add_ints(self, ints: npt.NDArray[Any]) -> EncryptedArray:
        n, nsq = self._key.n, self._key.nsquare
        bound = self._bound + max_abs(ints)
        _check_bound(self._key, bound, self.scale)
        flat = [(n * (v % n) + 1) % nsq for v in ints.reshape(-1).tolist()]
        gm = _object_array(flat, ints.shape)
        cts = self._broadcast(lambda: self._c * gm % nsq)
        return self._new(cts, bound=bound)

    def _add_encrypted(self, other: EncryptedArray, *, negate: bool) -> EncryptedArray:
        self._check_same_key(other)
        scale = max(self.scale, other.scale)
        a, b = self.rescaled(scale), other.rescaled(scale)
        nsq = self._key.nsquare
        bound = a._bound + b._bound
        _check_bound(self._key, bound, scale)
        bc = _INVERT(b._c, nsq) if negate else b._c
        return self._new(self._broadcast(lambda: a._c * bc % nsq), scale=scale, bound=bound)

    @timed
    def __add__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            return self._add_encrypted(other, negate=False)
        return self._add_ints(self._plain_ints(other, scale=self.scale))

    __radd__ = __add__

    @timed
    def __sub__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            return self._add_encrypted(other, negate=True)
        return self._add_ints(-self._plain_ints(other, scale=self.scale))

    @timed
    def __rsub__(self, other: Any) -> EncryptedArray:
        return (-self).__add__(other)

    @timed
    def __neg__(self) -> EncryptedArray:
        """``E(-v) = E(v)^(-1) mod n^2``."""
        return self._new(np.asarray(_INVERT(self._c, self._key.nsquare), dtype=object))

    # -- multiplication by plaintext -----------------------------------------------------------
    def _multiplier(self, other: Any) -> tuple[npt.NDArray[Any], int]:
        if isinstance(other, EncryptedArray):
            raise CryptoUsageError("ciphertext times ciphertext is not possible under Paillier")
        arr = np.asarray(other)
        scale = 0 if arr.dtype.kind in "biu" else self._encoding.precision_bits
        return self._plain_ints(arr, scale=scale), scale

    @timed
    def __mul__(self, other: Any) -> EncryptedArray:
        """``E(v)^k`` elementwise with broadcasting; negative ``k`` through the inverse."""
        ks, t = self._multiplier(other)
        bound = self._bound * max_abs(ks)
        scale = self.scale + t
        _check_bound(self._key, bound, scale)
        cts = self._broadcast(lambda: _POWMOD(self._c, ks, self._key.nsquare))
        return self._new(cts, scale=scale, bound=bound)

    __rmul__ = __mul__

    # -- matrix products -----------------------------------------------------------------------
    @timed
    def rmatmul(self, plain: Any, *, processes: int | None = None) -> EncryptedArray:
        """``plain @ self`` by multi-exponentiation (see :mod:`._multiexp`)."""
        ks, t = self._multiplier(plain)
        if ks.ndim not in (1, 2) or self.ndim not in (1, 2):
            raise CryptoUsageError("matmul needs 1-D or 2-D operands")
        a2 = ks if ks.ndim == 2 else ks[None, :]
        c2 = self._c if self.ndim == 2 else self._c[:, None]
        if a2.shape[1] != c2.shape[0]:
            raise CryptoUsageError(f"matmul shape mismatch: {ks.shape} @ {self.shape}")
        row_sums = [sum(abs(int(v)) for v in row) for row in a2.tolist()]
        bound = self._bound * max(row_sums, default=0)
        scale = self.scale + t
        _check_bound(self._key, bound, scale)
        out = left_matmul(a2, c2, self._key.nsquare, processes)
        if ks.ndim == 1:
            out = out[0]
        if self.ndim == 1:
            out = out[..., 0]
        return self._new(
            np.asarray(out, dtype=object).reshape(np.shape(out)), scale=scale, bound=bound
        )

    @timed
    def matmul(self, plain: Any, *, processes: int | None = None) -> EncryptedArray:
        """``self @ plain``, computed as ``(plain.T @ self.T).T``."""
        arr = np.asarray(plain)
        if arr.ndim not in (1, 2) or self.ndim not in (1, 2):
            raise CryptoUsageError("matmul needs 1-D or 2-D operands")
        left = self if self.ndim == 1 else self.T
        result = left.rmatmul(arr.T, processes=processes)
        return result.T if result.ndim == 2 else result

    def __matmul__(self, other: Any) -> EncryptedArray:
        if isinstance(other, EncryptedArray):
            raise CryptoUsageError("ciphertext @ ciphertext is not possible under Paillier")
        return self.matmul(other)

    def __rmatmul__(self, other: Any) -> EncryptedArray:
        return self.rmatmul(other)

    # -- reductions ----------------------------------------------------------------------------
    @timed
    def sum(self, axis: int | None = None) -> EncryptedArray:
        """``E(sum v)`` along ``axis`` (all entries when ``None``): products of ciphertexts."""
        nsq = self._key.nsquare
        arr = self._c.reshape(-1) if axis is None else np.moveaxis(self._c, axis, -1)
        length = arr.shape[-1] if arr.ndim else 1
        bound = self._bound * length
        _check_bound(self._key, bound, self.scale)
        rows = (
            arr.reshape(-1, length)
            if length
            else np.empty((int(np.prod(arr.shape[:-1])), 0), object)
        )
        sums = []
        for row in rows:
            acc = gmpy2.mpz(1)
            for c in row.tolist():
                acc = acc * c % nsq
            sums.append(acc)
        return self._new(_object_array(sums, tuple(arr.shape[:-1])), bound=bound)

    # -- randomness ----------------------------------------------------------------------------
    @timed
    def rerandomize(
        self,
        *,
        rng: RandomSource | None = None,
        pool: ObfuscatorPool | None = None,
        obfuscator: str = "standard",
        processes: int | None = None,
    ) -> EncryptedArray:
        """Fresh randomness before sending: ``c * x mod n^2`` with a new obfuscator ``x`` each."""
        if pool is not None:
            if pool.public_key != self._key:
                raise CryptoUsageError("obfuscator pool belongs to another public key")
            obfs = pool.take(self.size)
        else:
            obfs = self._key.raw_obfuscators(
                self.size, rng=rng, obfuscator=obfuscator, processes=processes
            )
        nsq = self._key.nsquare
        cts = [c * o % nsq for c, o in zip(self.raw_ciphertexts(), obfs, strict=True)]
        return self._new(_object_array(cts, self.shape))

    # -- serialisation -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Versioned bytes (layout in :mod:`._serial`): header, shape, ciphertexts; no scale or bound."""
        from crypto.paillier._serial import array_to_bytes

        return array_to_bytes(self)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        public_key: PaillierPublicKey,
        *,
        scale: int | None = None,
        bound: int | None = None,
        encoding: FixedPointEncoding | None = None,
    ) -> EncryptedArray:
        """Inverse of :meth:`to_bytes`; bad, truncated or other-key bytes raise :class:`InvalidCiphertext`.

        The array is undeclared unless the receiver passes the ``scale`` and ``bound`` it knows
        (the same as :meth:`assume`).
        """
        from crypto.paillier._serial import array_from_bytes

        arr = array_from_bytes(data, public_key)
        if scale is None:
            return arr
        return arr.assume(
            scale=scale, bound=public_key.max_int if bound is None else bound, encoding=encoding
        )

    # -- phe interop ---------------------------------------------------------------------------
    def to_phe(self) -> npt.NDArray[Any]:
        """An object array of ``phe.EncryptedNumber`` (see :func:`._phe.array_to_phe`)."""
        from crypto.paillier._phe import array_to_phe

        return array_to_phe(self)

    @classmethod
    def from_phe(
        cls,
        public_key: PaillierPublicKey,
        numbers: Any,
        *,
        max_abs_value: float | None = None,
    ) -> EncryptedArray:
        """From ``phe.EncryptedNumber`` objects (see :func:`._phe.array_from_phe`)."""
        from crypto.paillier._phe import array_from_phe

        return array_from_phe(public_key, numbers, max_abs_value=max_abs_value)
