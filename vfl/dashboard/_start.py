"""Start a dashboard from command-line flags: ``--dashboard HOST:PORT [--dashboard-token-file F]``.

Shared by ``vfl serve`` and ``vfl run``: :func:`add_dashboard_arguments` adds the two flags,
:func:`start_dashboard` reads the token file or makes a new token
(``secrets.token_urlsafe(32)``, 256 bits) and writes it to ``WORK_DIR/dashboard.token``
readable by its owner only (0600).
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from vfl.dashboard._health import NodeLike
from vfl.dashboard._server import DashboardServer, parse_bind
from vfl.errors import ConfigError

__all__ = [
    "add_dashboard_arguments",
    "start_dashboard",
    "read_token_file",
    "write_new_token",
    "TOKEN_FILE",
]

TOKEN_FILE = "dashboard.token"


def add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dashboard HOST:PORT`` and ``--dashboard-token-file FILE`` to ``parser``."""
    parser.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        help="also serve the read-only dashboard and /metrics here (e.g. 127.0.0.1:8050)",
    )
    parser.add_argument(
        "--dashboard-token-file",
        metavar="FILE",
        help=f"the dashboard's access token (default: a new one in WORK_DIR/{TOKEN_FILE})",
    )


def read_token_file(path: Path | str) -> str:
    """The first line of ``path``, surrounding whitespace removed."""
    try:
        lines = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--dashboard-token-file: cannot read {path}: {exc}") from exc
    if not lines:
        raise ConfigError(f"--dashboard-token-file: {path} is empty")
    return lines[0].strip()


def write_new_token(work_dir: Path | str) -> tuple[str, Path]:
    """A fresh token, written to ``WORK_DIR/dashboard.token`` with mode 0600 (dir 0700 if new)."""
    directory = Path(work_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: tighten it
        os.write(fd, (token + "\n").encode())
    finally:
        os.close(fd)
    return token, path


def start_dashboard(
    *,
    bind: str,
    work_dir: Path | str,
    token_file: Path | str | None = None,
    node: NodeLike | None = None,
    party: str | None = None,
) -> tuple[DashboardServer, Path]:
    """Start a :class:`DashboardServer`; returns it and the token file's path.

    From ``vfl run``: ``start_dashboard(bind=args.dashboard, work_dir=args.work_dir,
    token_file=args.dashboard_token_file, node=node)``; print ``server.login_url`` and call
    ``server.stop()`` when the job ends.
    """
    parse_bind(bind)  # a bad address fails before a token file is written
    if token_file is not None:
        token, path = read_token_file(token_file), Path(token_file)
    else:
        token, path = write_new_token(work_dir)
    server = DashboardServer(work_dir, bind=bind, token=token, node=node, party=party)
    return server.start(), path
