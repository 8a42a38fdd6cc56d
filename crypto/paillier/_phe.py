"""Interoperability with python-paillier (``phe``): ciphertext arrays both ways.

phe stores ``value = mantissa * 16^exponent``; our arrays store ``round(x * 2^scale)``. So a phe
exponent ``e`` is our scale ``-4e``, and ours exports with exponent ``-ceil(scale / 4)`` after
raising the scale to a multiple of 4 (``E(v)^(2^d)``, exact). Both use ``g = n + 1`` and the same
signed range (``max_int = n // 3 - 1``), so the ciphertexts are the same integers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np
import numpy.typing as npt

from crypto.errors import CryptoUsageError

if TYPE_CHECKING:
    from crypto.paillier._encrypted import EncryptedArray
    from crypto.paillier._keys import PaillierPublicKey

__all__ = ["array_to_phe", "array_from_phe"]


def array_to_phe(arr: EncryptedArray) -> npt.NDArray[Any]:
    """An object array (same shape) of ``phe.EncryptedNumber`` with exponent ``-ceil(scale/4)``."""
    import phe

    scale = -(-arr.scale // 4) * 4
    aligned = arr.rescaled(scale)
    pk = arr.public_key.to_phe()
    nums = [phe.EncryptedNumber(pk, int(c), -scale // 4) for c in aligned.raw_ciphertexts()]
    out = np.empty(len(nums), dtype=object)
    out[:] = nums
    return out.reshape(arr.shape)


def array_from_phe(
    public_key: PaillierPublicKey, numbers: Any, *, max_abs_value: float | None = None
) -> EncryptedArray:
    """``phe.EncryptedNumber`` objects (a list or array of any shape) under ``public_key``.

    The exponents ``e`` become one scale ``s = max(-4e, 0)``; lower-scale numbers are raised by
    ``E(v)^(2^(s + 4e))``. phe does not track magnitudes, so the bound is
    ``ceil(max_abs_value * 2^s)`` when given and otherwise ``max_int`` (decryptable, but no
    further growth is then allowed).
    """
    from crypto.paillier._encrypted import EncryptedArray

    arr = np.asarray(numbers, dtype=object)
    flat = arr.reshape(-1).tolist()
    for num in flat:
        if not hasattr(num, "ciphertext") or int(num.public_key.n) != int(public_key.n):
            raise CryptoUsageError("phe numbers must be EncryptedNumber under the same key")
    scales = [-4 * int(num.exponent) for num in flat]
    scale = max([0, *scales])
    nsq = public_key.nsquare
    cts = np.empty(len(flat), dtype=object)
    cts[:] = [
        gmpy2.powmod(gmpy2.mpz(num.ciphertext(be_secure=False)), gmpy2.mpz(1) << (scale - s), nsq)
        for num, s in zip(flat, scales, strict=True)
    ]
    if max_abs_value is None:
        bound = public_key.max_int
    else:
        bound = int(np.ceil(abs(max_abs_value) * 2.0**scale))
    return EncryptedArray(public_key, cts.reshape(arr.shape), scale=scale, bound=bound)
