"""The ``vfl`` command line: one entry point, one module per command.

Every command takes ``--json`` and exits non-zero with a one-line error on bad input. Command
modules are imported lazily so that ``vfl --help`` stays fast; each defines
``register(subparsers) -> None`` and sets ``func(args) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

# (command name, module). Each module registers its own sub-parser.
_COMMANDS: tuple[tuple[str, str], ...] = (
    ("demo", "vfl.cli.demo"),
    ("certs", "vfl.cli.certs"),
    ("serve", "vfl.cli.serve"),
    ("run", "vfl.cli.run"),
    ("psi", "vfl.cli.psi"),
    ("audit", "vfl.cli.audit"),
    ("models", "vfl.cli.models"),
    ("privacy", "vfl.cli.privacy"),
    ("report", "vfl.cli.report"),
    ("bench", "vfl.cli.bench"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfl",
        description="Vertical federated learning and secure computation engine.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, module_name in _COMMANDS:
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors that are the user's or a peer's fault: printed as one line, exit code 2."""
    from crypto.errors import CryptoError
    from vfl.errors import VflError

    types: list[type[BaseException]] = [CryptoError, VflError, OSError]
    for module_name, attr in (("protocols.errors", "ProtocolError"), ("psi.errors", "PSIError")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        types.append(getattr(module, attr))
    return tuple(types)


def main(argv: Sequence[str] | None = None) -> int:
    # Imported first, before any command can import grpc: it fixes gRPC's TLS policy (TLS 1.3
    # only), which gRPC reads once at import time (protocols/_tls_policy.py). Imported here and
    # not at module level, so that a process-pool worker (spawned: it re-imports the main
    # module, this one) starts without the transport layer.
    import protocols  # noqa: F401

    parser = build_parser()
    args = parser.parse_args(argv)
    level = (
        logging.WARNING
        if args.verbose == 0
        else (logging.INFO if args.verbose == 1 else logging.DEBUG)
    )
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("vfl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`vfl ... | head`): not an error of the command. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except _user_error_types() as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"vfl: error: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
