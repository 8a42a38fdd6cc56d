"""Cryptographic primitives: Paillier, CKKS (TenSEAL), Ed25519/X25519 keys, randomness.

This package imports no other package of the engine (DESIGN.md, "The layers").
"""

from crypto.errors import CryptoError, CryptoUsageError, InvalidCiphertext

__all__ = ["CryptoError", "CryptoUsageError", "InvalidCiphertext"]
