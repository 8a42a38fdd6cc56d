"""CKKS on TenSEAL: named 128-bit presets, key-owner and public contexts, packed encrypted batches.

>>> import numpy as np
>>> from crypto.ckks import CKKSBatch, CKKSContext
>>> owner = CKKSContext.generate()                  # secret key stays here
>>> peer = CKKSContext.from_bytes(owner.to_bytes())  # public key only
>>> x = np.arange(12.0).reshape(6, 2)
>>> enc = CKKSBatch.from_bytes(CKKSBatch.encrypt(owner, x).to_bytes(), context=peer)
>>> y = enc @ np.array([[1.0], [2.0]])                 # evaluated at the peer
>>> out = CKKSBatch.from_bytes(y.to_bytes(), context=owner).decrypt()
>>> bool(np.allclose(out, x @ np.array([[1.0], [2.0]]), atol=1e-4))
True

See ``docs/crypto/ckks.md`` for the layout, sizes, errors and the rules on releasing decryptions.
"""

from crypto.ckks._batch import DEFAULT_RELEASE_BITS, DEFAULT_SHARE_BITS, CKKSBatch
from crypto.ckks._context import CKKSContext
from crypto.ckks._presets import HE_STANDARD_MAX_LOGQ, PRESETS, CKKSPreset, get_preset
from crypto.ckks._wire import FORMAT_VERSION

__all__ = [
    "CKKSBatch",
    "CKKSContext",
    "CKKSPreset",
    "PRESETS",
    "HE_STANDARD_MAX_LOGQ",
    "FORMAT_VERSION",
    "DEFAULT_SHARE_BITS",
    "DEFAULT_RELEASE_BITS",
    "get_preset",
]
