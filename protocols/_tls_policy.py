"""TLS policy for the gRPC transport: mutual TLS against the federation CA, TLS 1.3 only.

Python gRPC has no minimum-TLS-version setting (grpc/grpc#37305; server-side support is still an
open proposal, grpc/grpc#43074), and BoringSSL does not let an application choose TLS 1.3 cipher
suites at all. We get "TLS 1.3 only" from two facts:

1. every certificate of the federation is ECDSA (:mod:`protocols.pki`), and
2. the TLS 1.2 cipher list (``GRPC_SSL_CIPHER_SUITES``) contains only *RSA*-authenticated suites.

A TLS 1.2 handshake needs a TLS 1.2 suite that matches the certificate's key type; there is none,
so every TLS 1.2 handshake fails ("no shared cipher"), while TLS 1.3 suites are independent of the
key type and keep working. gRPC reads ``GRPC_SSL_CIPHER_SUITES`` once, when ``grpc`` is first
imported, so importing :mod:`protocols` sets it (this module imports no gRPC); a process must
import ``protocols`` before ``grpc``. A node verifies at start-up that a TLS 1.2 handshake is
really refused (:func:`tls12_refused`) and refuses to run otherwise (fail closed). The setting
only narrows TLS 1.2 cipher suites of gRPC in this process; TLS 1.3 is unaffected.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from pathlib import Path

__all__ = [
    "CIPHER_SUITES_ENV",
    "TLS12_CIPHER_SUITES",
    "apply_tls13_policy",
    "tls12_refused",
]

CIPHER_SUITES_ENV = "GRPC_SSL_CIPHER_SUITES"
TLS12_CIPHER_SUITES = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"


def apply_tls13_policy() -> None:
    """Set the TLS 1.2 cipher list that no ECDSA certificate can use (before importing grpc)."""
    os.environ[CIPHER_SUITES_ENV] = TLS12_CIPHER_SUITES
    # The start-up self-check provokes a refused TLS 1.2 handshake on purpose; gRPC core would log
    # it as "Handshake failed" on stderr. Keep gRPC's own logging to errors unless the user chose.
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def tls12_refused(
    host: str, port: int, *, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, timeout: float = 5.0
) -> bool:
    """Try a TLS 1.2 handshake (with a valid client certificate); ``True`` if it is refused.

    Raises ``OSError`` when no TCP connection can be made (then nothing was proved).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    # Connecting must work (an OSError here propagates: the probe proves nothing); only a
    # failure of the TLS 1.2 handshake itself counts as "refused".
    with socket.create_connection((host, port), timeout=timeout) as sock:
        try:
            with context.wrap_socket(sock, server_hostname=host) as tls:
                tls.do_handshake()
                return False
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return True
