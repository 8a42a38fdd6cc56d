"""``vfl report RUN_DIR --out report.html [--json]``: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto.random import SeededRandom
from tests.vfl.test_report import write_hetero_run, write_split_nn_run
from vfl.cli import main


def test_report_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_hetero_run(tmp_path)
    out = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(out)
    assert len(printed["plots"]) >= 5
    assert "lineage" in printed["plots"]
    assert printed["work_dir"] == str(run_dir.parents[2].resolve())
    html = out.read_text(encoding="utf-8")
    assert html.count("<svg") == len(printed["plots"])


def test_report_text_and_explicit_work_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hetero = write_hetero_run(tmp_path)
    run_dir = write_split_nn_run(tmp_path)
    out = tmp_path / "snn.html"
    args = ["report", str(run_dir), "--out", str(out), "--work-dir", str(hetero.parents[2])]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (")
    assert "audit-events" in out.read_text(encoding="utf-8")


def test_pinned_audit_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crypto.keys import SigningKey

    run_dir = write_hetero_run(tmp_path)
    pem = tmp_path / "audit.pub.pem"
    SigningKey.generate(rng=SeededRandom(1)).verify_key.save(pem)  # the log's key (seed 1)
    out = tmp_path / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--audit-key", str(pem)]) == 0
    assert "under pinned key" in out.read_text(encoding="utf-8")


def test_bad_run_dir_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    out = tmp_path / "report.html"
    assert main(["report", str(run_dir), "--out", str(out), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfl: error: ")
    assert "no status.json or result.json" in lines[0]
    assert not out.exists() and not (tmp_path / "report.html.partial").exists()


def test_missing_out_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["report", str(tmp_path)])
    assert info.value.code == 2


def test_console_entry_point(tmp_path: Path) -> None:
    run_dir = write_split_nn_run(tmp_path)
    out = tmp_path / "r.html"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-m", "vfl.cli", "report", str(run_dir), "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["out"] == str(out)
    bad = subprocess.run(
        [sys.executable, "-m", "vfl.cli", "report", str(tmp_path / "no"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"vfl: error: no run directory at {tmp_path / 'no'}"
