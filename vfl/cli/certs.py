"""``vfl certs init``: a development CA, per-party TLS certificates and signing keys, and a
ready ``federation.toml`` (see :mod:`protocols.pki`)."""

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
    try:
        path = init_federation(parties, out, hosts=args.host, base_port=args.base_port)
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
