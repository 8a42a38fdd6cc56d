"""The ``vfl`` command line: one entry point, one module per command.

Every command takes ``--json`` and exits non-zero with a one-line error on bad input; the exit
codes are :data:`EXIT_CODES` (printed by ``vfl --help``). Every parser and sub-parser is a
:class:`VflArgumentParser`, whose help shows each option's default. Command modules are imported
lazily so that ``vfl --help`` stays fast; each defines ``register(subparsers) -> None`` and sets
``func(args) -> int`` on its parser.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["EXIT_CODES", "RawDescriptionFormatter", "VflArgumentParser", "main", "build_parser"]

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_PEER, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

#: What each exit status of ``vfl`` means (``vfl --help`` prints this table).
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (EXIT_OK, "ok"),
    (EXIT_CHECK_FAILED, "a check failed (audit log does not verify, demo phase failed)"),
    (EXIT_USAGE, "usage or input error (bad flag, job file, federation file, data, keys)"),
    (EXIT_PEER, "peer or network error (peer down, timed out, broke the protocol)"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C)"),
)


def _default_note(action: argparse.Action) -> str | None:
    """``(default: X)`` for an option whose default means something, else ``None``."""
    default = action.default
    if (
        default is None
        or default is False
        or default is argparse.SUPPRESS
        or action.help is argparse.SUPPRESS
        or isinstance(action, argparse._HelpAction | argparse._VersionAction)
        or not (action.option_strings or action.nargs in (argparse.OPTIONAL, "*"))
    ):
        return None
    shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
    return f"(default: {shown})".replace("%", "%%")  # the help text is %-formatted after this


class _HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default (``(default: X)``) unless its help already states one.

    Unlike ``argparse.ArgumentDefaultsHelpFormatter`` it also does so for options with no help
    text, and leaves out defaults that say nothing (``None``, an unset flag's ``False``).
    """

    def _format_action(self, action: argparse.Action) -> str:
        note = _default_note(action)
        if action.help is None and note is not None:
            action = copy.copy(action)
            action.help = note
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        note = _default_note(action)
        if note is None or "default" in text.lower():
            return action.help
        return f"{text} {note}"


class RawDescriptionFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, and the description and epilog keep their lines (the exit-code table)."""


class VflArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose help shows defaults; its sub-parsers are of this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vfl-engine")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


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
    epilog = "exit status:\n" + "\n".join(f"  {code:<4} {what}" for code, what in EXIT_CODES)
    parser = VflArgumentParser(
        prog="vfl",
        description="Vertical federated learning and secure computation engine.",
        epilog=epilog,
        formatter_class=RawDescriptionFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=VflArgumentParser)
    sub.required = True
    for _name, module_name in _COMMANDS:
        module = importlib.import_module(module_name)
        module.register(sub)
    return parser


def _peer_error_types() -> tuple[type[BaseException], ...]:
    """Errors of a peer or the network: printed as one line, exit code 3."""
    from protocols.errors import RemoteProtocolError, TransportError
    from psi.errors import PSIProtocolError

    return (RemoteProtocolError, TransportError, PSIProtocolError, ConnectionError, TimeoutError)


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Errors of the user's input or setup: printed as one line, exit code 2."""
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
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (`vfl ... | head`): not an error of the command. Point
        # stdout at /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except _peer_error_types() as exc:  # before the user errors: a timeout is an OSError too
        print(f"vfl: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_PEER
    except _user_error_types() as exc:
        print(f"vfl: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    return code


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
