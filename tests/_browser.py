"""Headless Chromium for the tests that render pages (dashboard, reports): one launcher.

Debian's ``chromium`` package (``.ci/run`` installs it on CI). The flags keep it off this
machine's closed network (no background fetches, no QUIC) and give each launch its own profile.
Screenshots and dumped pages go to ``$VFL_TEST_ARTIFACTS`` or ``tests/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)",
)

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def artifacts() -> Path:
    """Where a test keeps what it rendered (created on first use)."""
    base = os.environ.get("VFL_TEST_ARTIFACTS")
    path = Path(base) if base else Path(__file__).resolve().parent / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def chromium(
    url: str, profile: Path, *extra: str, timeout: float = 180.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with ``extra`` flags (``--dump-dom``, ``--screenshot=``)."""
    assert CHROMIUM is not None
    command = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
