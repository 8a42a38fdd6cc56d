"""Errors of the crypto layer.

Few and flat, split by whose fault it was (see STYLE.md):

* :class:`CryptoUsageError` -- the caller misused the API (mixed keys, a value that does not fit
  the encoding, a shape mismatch, an insecure parameter without the explicit flag).
* :class:`InvalidCiphertext` -- bytes or objects that came from outside (a peer, a file) are
  malformed, truncated, tampered with or belong to another key. Deliberately opaque: the message
  says *that* the input is bad and which object, never secret-dependent details.
* :class:`InvalidSignature` -- a signature does not verify under the given public key. Opaque,
  like ``cryptography``'s own ``InvalidSignature``.
* :class:`InvalidKey` -- key bytes or a key file from outside are malformed or of the wrong type.
"""

from __future__ import annotations

__all__ = ["CryptoError", "CryptoUsageError", "InvalidCiphertext", "InvalidSignature", "InvalidKey"]


class CryptoError(Exception):
    """Base class of every error raised by :mod:`crypto`."""


class CryptoUsageError(CryptoError, ValueError):
    """The local caller used the API wrongly (our fault, not the peer's)."""


class InvalidCiphertext(CryptoError):
    """Input from outside (peer or disk) is malformed, truncated, tampered or for another key."""


class InvalidSignature(CryptoError):
    """A signature does not verify under the given public key (deliberately opaque)."""


class InvalidKey(CryptoError):
    """Key bytes or a key file from outside (peer or disk) are malformed or of the wrong type."""
