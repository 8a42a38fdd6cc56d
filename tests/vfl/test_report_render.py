"""The report opens offline in a real browser: headless Chromium renders it to a PNG.

Skipped (with the reason) when Chromium is not installed; .ci/run installs it. The screenshot
is kept under ``$VFL_TEST_ARTIFACTS`` (default ``tests/artifacts/``) for a person to look at.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests import _browser as browser
from tests.vfl.test_report import EVIL, write_hetero_run, write_split_nn_run
from vfl.report import write_report

CHROMIUM = browser.CHROMIUM
pytestmark = [pytest.mark.slow, browser.needs_chromium]


_artifacts = browser.artifacts


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return browser.chromium(args[-1], tmp / "chromium-profile", *args[:-1], check=False)


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw (filtered) scanlines of a PNG, decoded with zlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.mark.parametrize("kind", ["hetero_lr", "split_nn"])
def test_report_renders_in_headless_chromium(tmp_path: Path, kind: str) -> None:
    run_dir = (
        write_hetero_run(tmp_path)
        if kind == "hetero_lr"
        else write_split_nn_run(tmp_path, feature=EVIL)
    )
    html = tmp_path / "report.html"
    report = write_report(run_dir, html)
    assert len(report.plots) >= 5
    url = html.resolve().as_uri()
    dom = _chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Chromium parsed every plot as SVG, and nothing from the run's files became a script.
    assert dom.stdout.count("<svg") == len(report.plots)
    assert "<script" not in dom.stdout
    png = _artifacts() / f"report-{kind}.png"
    png.unlink(missing_ok=True)
    shot = _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={png}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    width, height, pixels = _png_pixels(png)
    assert (width, height) == (1200, 2400)
    # A rendered report, not a blank page: many distinct byte values in the scanlines.
    assert len(set(pixels[: 1200 * 4 * 600])) > 40
