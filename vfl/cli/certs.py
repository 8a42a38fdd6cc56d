"""``vfl certs init``: a development CA, per-party TLS certificates and signing keys, and a
ready ``federation.toml`` (see :mod:`protocols.pki`).

For parties on separate hosts, ``--address bank=10.0.0.1:50051`` sets where each node listens
and puts its host in the certificates' SANs (an IP SAN for an IP address)::

    vfl certs init --parties bank,retailer --out fed \\
        --address bank=10.0.0.1:50051 --address retailer=10.0.0.2:50051
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vfl.errors import ConfigError

__all__ = ["register"]


def register(sub: Any) -> None:
    parser = sub.add_parser("certs", help="development CA, party certificates and signing keys")
    actions = parser.add_subparsers(dest="certs_command", metavar="ACTION")
    actions.required = True
    init = actions.add_parser(
        "init",
        help="make a CA, per-party TLS certificates and Ed25519 keys, and federation.toml",
        description=(
            "Make a development federation: DIR/ca.pem, DIR/<party>/{tls.pem,tls.key,"
            "signing.key,signing.pub.pem} and DIR/federation.toml. Private keys are mode 0600."
        ),
    )
    init.add_argument("--parties", required=True, help="comma-separated names, e.g. bank,retailer")
    init.add_argument("--out", required=True, metavar="DIR", help="output directory")
    init.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra host name or IP for the certificates' SAN (repeatable)",
    )
    init.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="PARTY=HOST:PORT",
        help=(
            "where PARTY's node listens (repeatable; default 127.0.0.1:<base port + i>); "
            "HOST also goes into the certificates' SANs (IP or DNS)"
        ),
    )
    init.add_argument("--base-port", type=int, default=50051, help="first party's port")
    init.add_argument("--force", action="store_true", help="overwrite an existing federation")
    init.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    init.set_defaults(func=_init)


def _init(args: argparse.Namespace) -> int:
    from protocols.config import load_federation
    from protocols.errors import ConfigError as ProtocolConfigError
    from protocols.pki import init_federation

    parties = [p.strip() for p in args.parties.split(",") if p.strip()]
    out = Path(args.out)
    if (out / "federation.toml").exists() and not args.force:
        raise ConfigError(f"--out: {out / 'federation.toml'} exists (use --force to overwrite)")
    if not 1 <= args.base_port <= 65535 - len(parties):
        raise ConfigError(f"--base-port must leave room for {len(parties)} ports")
    addresses = _addresses(args.address, parties)
    # init_federation puts each node's own address host into its own certificate (for clients
    # that check the host: openssl, curl, grpc_health_probe); gRPC peers check DNS:<party>.
    try:
        path = init_federation(
            parties, out, hosts=args.host, addresses=addresses, base_port=args.base_port
        )
        config = load_federation(path)
    except ProtocolConfigError as exc:
        raise ConfigError(str(exc)) from exc
    result = {
        "federation": str(path),
        "ca": str(config.ca),
        "parties": {
            name: {
                "address": party.address,
                "tls_cert": str(party.tls_cert),
                "signing_key_fingerprint": party.signing_public_key.fingerprint,
            }
            for name, party in config.parties.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"wrote {path}")
        for name, info in result["parties"].items():  # type: ignore[attr-defined]
            print(f"  {name:<12} {info['address']:<22} key {info['signing_key_fingerprint'][:16]}")
    return 0


def _addresses(values: list[str], parties: list[str]) -> dict[str, str]:
    """``--address PARTY=HOST:PORT`` options as ``{party: "HOST:PORT"}``, each one checked."""
    out: dict[str, str] = {}
    for value in values:
        party, sep, address = value.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or party not in parties:
            raise ConfigError(
                f"--address {value!r}: must be PARTY=HOST:PORT with PARTY in --parties"
            )
        if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--address {value!r}: the address must be HOST:PORT")
        if party in out:
            raise ConfigError(f"--address: {party} is given twice")
        out[party] = address
    return out
