"""The deployment files under docs/deploy/ stay valid and in step with the project."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"
UNITS = ("vfl-serve.service", "vfl-run@.service")


def _settings(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / unit).read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_hardened(unit: str) -> None:
    got = _settings(unit)
    assert got["User"] == ["vfl"] and got["NoNewPrivileges"] == ["yes"]
    assert got["ProtectSystem"] == ["strict"] and got["PrivateTmp"] == ["yes"]
    assert got["ReadWritePaths"] == ["/var/lib/vfl"] and got["CapabilityBoundingSet"] == [""]
    assert got["ExecStart"][0].startswith("/opt/vfl/venv/bin/vfl ")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart= exists: point it at this environment's `vfl`, and make the
    # per-node environment file optional, as nothing is installed under /opt or /etc here.
    vfl = Path(sys.executable).parent / "vfl"
    if not vfl.is_file():
        pytest.skip(f"no `vfl` script next to {sys.executable}")
    for unit in UNITS:
        text = (DEPLOY / unit).read_text()
        text = text.replace("/opt/vfl/venv/bin/vfl", str(vfl))
        text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")
        (tmp_path / unit).write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "vfl-serve.service"),
         str(tmp_path / "vfl-run@credit.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # verify exits 0 on settings it cannot parse ("..., ignoring"): none may be reported.
    about_ours = [line for line in done.stderr.splitlines() if str(tmp_path) in line]
    assert about_ours == [], about_ours


def test_dockerfile_pins_torch_as_pyproject_does() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("torch"))
    text = (DEPLOY / "Dockerfile").read_text()
    installs = re.findall(r"pip install [^\n]*torch\S*", text)
    assert installs == [f"pip install --index-url https://download.pytorch.org/whl/cpu {pin}"]
    final = text.rsplit("\nFROM ", 1)[1]
    user = re.search(r"^USER (\S+)$", final, re.M)
    assert user is not None and not user.group(1).startswith(("root", "0"))
    assert "COPY --from=build /opt/vfl/venv /opt/vfl/venv" in final
