"""Fixed-point encoding of float64 / integer arrays into Paillier plaintexts.

A real ``x`` at scale ``s`` (bits) becomes the signed integer ``v = round(x * 2**s)``; a signed
``v`` is stored in ``Z_n`` as ``v mod n``. Following python-paillier (``phe.EncodedNumber``), the
valid plaintexts are ``[0, max_int]`` (non-negative) and ``[n - max_int, n)`` (negative) with
``max_int = n // 3 - 1``; the gap between them detects overflow on decryption. Encoding a value
with ``|v| > max_int`` raises :class:`~crypto.errors.CryptoUsageError`, it never wraps.

Every :class:`~crypto.paillier.EncryptedArray` has one scale for all of its entries and an integer
``bound`` with ``|v| <= bound`` for every entry; homomorphic operations update both (scales add up
under multiplication, bounds grow by the largest multiplier or the number of summands) and refuse
any result whose bound exceeds ``max_int``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crypto.errors import CryptoUsageError

__all__ = ["FixedPointEncoding", "DEFAULT_PRECISION_BITS", "encode_ints", "decode_ints", "max_abs"]

DEFAULT_PRECISION_BITS = 32
_INT64_SAFE = 1 << 62


@dataclass(frozen=True)
class FixedPointEncoding:
    """Fixed-point encoding with ``precision_bits`` fractional bits: ``v = round(x * 2**p)``.

    The default ``precision_bits=32`` resolves ``2**-32 ~ 2.3e-10``; at 2048 bits it leaves about
    2012 bits for magnitude and growth (products add scales: ``32 + 32 = 64``).
    """

    precision_bits: int = DEFAULT_PRECISION_BITS

    def __post_init__(self) -> None:
        if not isinstance(self.precision_bits, int) or not 0 <= self.precision_bits <= 1024:
            raise CryptoUsageError("precision_bits must be an int in [0, 1024]")


def _as_array(x: Any) -> npt.NDArray[Any]:
    arr = np.asarray(x)
    if arr.dtype == object:
        raise CryptoUsageError("cannot encode an object array: pass float or integer values")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        raise CryptoUsageError(f"cannot encode dtype {arr.dtype}: pass float or integer values")
    return arr


def encode_ints(x: Any, *, scale: int) -> npt.NDArray[Any]:
    """Return ``round(x * 2**scale)`` as an object array of Python ints (exact, any magnitude).

    Integer inputs are shifted exactly; floats are scaled by ``ldexp`` (exact) and rounded half
    to even. Non-finite values raise :class:`CryptoUsageError`.
    """
    arr = _as_array(x)
    if arr.dtype.kind in "iu":
        ints = [int(v) << scale for v in arr.reshape(-1).tolist()]
    else:
        arr = arr.astype(np.float64, copy=False)
        if not np.all(np.isfinite(arr)):
            raise CryptoUsageError("cannot encode NaN or infinite values")
        scaled = np.rint(np.ldexp(arr, scale))
        if scaled.size == 0 or float(np.max(np.abs(scaled))) < _INT64_SAFE:
            ints = scaled.astype(np.int64).reshape(-1).tolist()
        else:
            ints = [int(v) for v in scaled.reshape(-1).tolist()]
    out = np.empty(len(ints), dtype=object)
    out[:] = ints
    return out.reshape(arr.shape)


def max_abs(ints: npt.NDArray[Any]) -> int:
    """Largest ``|v|`` of an object array of ints (0 for an empty array)."""
    if ints.size == 0:
        return 0
    return max(abs(int(v)) for v in ints.reshape(-1).tolist())


def decode_ints(
    values: list[int], *, scale: int, shape: tuple[int, ...]
) -> npt.NDArray[np.float64]:
    """Return ``v / 2**scale`` as float64 (correctly rounded) with the given shape."""
    denom = 1 << scale
    try:
        out = np.array([v / denom for v in values], dtype=np.float64)
    except OverflowError as exc:
        raise CryptoUsageError("decrypted value too large for float64") from exc
    return out.reshape(shape)
