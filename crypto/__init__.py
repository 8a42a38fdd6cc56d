"""Cryptographic primitives: Paillier, CKKS (TenSEAL), Ed25519/X25519 keys, randomness.

This package imports no other package of the engine (DESIGN.md, "The layers").
``crypto.timing`` tells how much wall time the public crypto calls took (see ``crypto._timing``).
"""

from crypto import _timing as timing
from crypto.errors import CryptoError, CryptoUsageError, InvalidCiphertext

__all__ = ["CryptoError", "CryptoUsageError", "InvalidCiphertext", "timing"]
