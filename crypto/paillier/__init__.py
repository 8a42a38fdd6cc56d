"""Paillier encryption on numpy arrays: vectorised, packed, parallel, interoperable with ``phe``.

Paillier, "Public-key cryptosystems based on composite degree residuosity classes", EUROCRYPT
1999, with ``g = n + 1`` and CRT decryption. See ``docs/crypto/paillier.md`` for the encodings,
the packing layout, the obfuscator options and their assumptions, and the byte formats.

>>> pub, priv = generate_keypair(512, insecure_allow_small_keys=True)  # doctest: +SKIP
>>> priv.decrypt(pub.encrypt([1.5, -2.0]) * 2)  # doctest: +SKIP
array([ 3., -4.])
"""

from crypto.paillier._encoding import FixedPointEncoding
from crypto.paillier._encrypted import EncryptedArray
from crypto.paillier._keys import KEY_SIZES, PaillierPublicKey
from crypto.paillier._packing import PackedEncryptedArray, PackingLayout
from crypto.paillier._parallel import shutdown_workers
from crypto.paillier._pool import ObfuscatorPool
from crypto.paillier._private_key import PaillierPrivateKey, generate_keypair

__all__ = [
    "generate_keypair",
    "PaillierPublicKey",
    "PaillierPrivateKey",
    "EncryptedArray",
    "PackedEncryptedArray",
    "PackingLayout",
    "FixedPointEncoding",
    "ObfuscatorPool",
    "KEY_SIZES",
    "shutdown_workers",
]

# Public classes report this package as their home: codecs and users name them by
# ``crypto.paillier.<Name>`` (see protocols/codecs.py), not by the private module.
for _cls in (
    PaillierPublicKey,
    PaillierPrivateKey,
    EncryptedArray,
    PackedEncryptedArray,
    PackingLayout,
    FixedPointEncoding,
    ObfuscatorPool,
):
    _cls.__module__ = __name__
del _cls
