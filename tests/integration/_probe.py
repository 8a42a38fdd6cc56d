"""Network probes run inside a namespace by the multi-host test; each prints one JSON object.

    python -m tests.integration._probe tcp HOST PORT
    python -m tests.integration._probe tls --ca CA --cert CERT --key KEY HOST PORT
    python -m tests.integration._probe health --ca CA --cert CERT --key KEY \\
        --server-name bank HOST:PORT

``tcp`` only connects. ``tls`` makes a TLS 1.3 handshake with Python's ``ssl`` and checks the
server's certificate against HOST (an IP SAN when HOST is an IP), as a non-gRPC client would.
``health`` calls the standard gRPC health service over mutual TLS with the given identity,
verifying the server as ``--server-name`` (the party name), as a federation peer does.
"""

from __future__ import annotations

import protocols  # noqa: F401  (first: sets the TLS 1.3 policy before grpc is imported)

# isort: split

import argparse
import errno
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT = 5.0


def _tcp(args: argparse.Namespace) -> dict[str, Any]:
    try:
        with socket.create_connection((args.host, args.port), timeout=TIMEOUT):
            return {"connected": True}
    except OSError as exc:
        name = errno.errorcode.get(exc.errno, "") if exc.errno else type(exc).__name__
        return {"connected": False, "error": name or str(exc)}


def _tls(args: argparse.Namespace) -> dict[str, Any]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cafile=args.ca)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(["h2"])
    try:
        with socket.create_connection((args.host, args.port), timeout=TIMEOUT) as sock:
            with context.wrap_socket(sock, server_hostname=args.host) as tls:
                cipher = tls.cipher()
                return {"ok": True, "version": tls.version(), "cipher": cipher and cipher[0]}
    except (OSError, ssl.SSLError) as exc:
        return {"ok": False, "error": str(exc)}


def _health(args: argparse.Namespace) -> dict[str, Any]:
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(args.ca).read_bytes(),
        private_key=Path(args.key).read_bytes(),
        certificate_chain=Path(args.cert).read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", args.server_name)]
    with grpc.secure_channel(args.address, creds, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT)
        except grpc.RpcError as exc:
            return {"error": exc.code().name, "details": exc.details()}
    return {"status": health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="probe")
    sub = parser.add_subparsers(dest="probe", required=True)
    tcp = sub.add_parser("tcp")
    tcp.add_argument("host")
    tcp.add_argument("port", type=int)
    tcp.set_defaults(func=_tcp)
    tls = sub.add_parser("tls")
    tls.add_argument("host")
    tls.add_argument("port", type=int)
    health = sub.add_parser("health")
    health.add_argument("address")
    health.add_argument("--server-name", required=True)
    for p in (tls, health):
        p.add_argument("--ca", required=True)
        p.add_argument("--cert", required=True)
        p.add_argument("--key", required=True)
    tls.set_defaults(func=_tls)
    health.set_defaults(func=_health)
    args = parser.parse_args()
    print(json.dumps(args.func(args)), flush=True)


if __name__ == "__main__":
    main()
