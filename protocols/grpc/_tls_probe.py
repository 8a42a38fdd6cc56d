"""Why a TLS connection to a peer fails, exactly: a direct ``ssl`` handshake with this party's
own client certificate and the federation CA, made when gRPC reports a failed handshake.

gRPC only says ``UNAVAILABLE`` ("Ssl handshake failed ... CERTIFICATE_VERIFY_FAILED"), the same
status as a peer that is not up yet, so without this a wrong certificate reads like a network
outage and is retried for the whole connect window. :func:`certificate_problem` turns it into
one sentence naming the peer and the cause; anything it cannot prove (no TCP connection, a
handshake that works) gives ``None`` and the caller keeps retrying.
"""

from __future__ import annotations

import socket
import ssl
import tempfile
from pathlib import Path

__all__ = ["certificate_problem", "looks_like_tls_failure"]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) the messages distinguish.
_HOSTNAME_MISMATCH = 62
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
# "socket closed": what a client sees when the server drops it after the handshake, as a server
# that refuses its certificate does (the probe then tells that apart from a peer going away).
_TLS_WORDS: tuple[str, ...] = ("ssl", "handshake", "certificate", "peer name", "tsi_")
_TLS_WORDS += ("verification check", "socket closed")


def looks_like_tls_failure(details: str) -> bool:
    """``True`` if a gRPC status text mentions a TLS handshake or certificate failure."""
    text = details.lower()
    return any(word in text for word in _TLS_WORDS)


def _context(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=ca_pem.decode("ascii"))
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    return context


def certificate_problem(
    peer: str,
    address: str,
    *,
    ca_pem: bytes,
    cert_pem: bytes,
    key_pem: bytes,
    timeout: float = 3.0,
) -> str | None:
    """One line saying why mutual TLS with ``peer`` at ``address`` cannot work, or ``None``.

    The peer's certificate must chain to ``ca_pem`` and name ``peer`` (what the gRPC channel
    checks); after the handshake the first read shows whether the peer accepted ours (in TLS
    1.3 a server rejects a client certificate with an alert after the handshake).
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    context = _context(ca_pem, cert_pem, key_pem)
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except (OSError, ValueError):
        return None  # not reachable: nothing about certificates is proved
    with sock:
        try:
            with context.wrap_socket(sock, server_hostname=peer) as tls:
                try:
                    # A node that accepted us sends its HTTP/2 settings at once; one that
                    # refused our certificate alerts or just closes the connection.
                    first = tls.recv(1)
                except TimeoutError:
                    return None
                except ssl.SSLError as exc:
                    if "alert" in str(exc).lower() or "certificate" in str(exc).lower():
                        return (
                            f"peer {peer!r} at {address} refused this party's certificate "
                            f"({exc.reason or exc}): does it use this federation's CA?"
                        )
                    return None
                if first:
                    return None
                return (
                    f"peer {peer!r} at {address} refused this party's certificate (it closed "
                    "the connection after the handshake): does it use this federation's CA?"
                )
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code == _HOSTNAME_MISMATCH:
                return (
                    f"peer {peer!r} at {address} presented a certificate that does not name "
                    f"{peer!r}: check parties.{peer}.address and its tls_cert"
                )
            if exc.verify_code in (_CERT_HAS_EXPIRED, _CERT_NOT_YET_VALID):
                return f"peer {peer!r} at {address} presented a certificate that is not valid now ({exc.verify_message})"
            return f"peer {peer!r} presented a certificate not issued by this federation's CA ({address}: {exc.verify_message})"
        except ssl.SSLError as exc:
            if "alert" in str(exc).lower():
                return (
                    f"peer {peer!r} at {address} refused this party's certificate "
                    f"({exc.reason or exc}): does it use this federation's CA?"
                )
            return None
        except OSError:
            return None
