"""CLI conventions, each through a real ``python -m vfl.cli`` process: ``--version``, defaults in
every ``--help``, the documented exit codes (0, 2, 3, 130 provoked for real), and the progress
bars of ``vfl run``'s PSI and split NN phases (on stderr, off with ``--json``)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pytest

from tests._data import read_fate
from tests.protocols.grpc_harness import make_federation

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR")


def _vfl(*args: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vfl.cli", *args],
        capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout,
    )  # fmt: skip


def _spawn(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vfl.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=cwd,
    )  # fmt: skip


def test_version_comes_from_the_package_metadata() -> None:
    proc = _vfl("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"vfl {version('vfl-engine')}"


def test_help_documents_the_exit_codes() -> None:
    out = _vfl("--help").stdout
    table = out.split("exit status:", 1)[1]
    codes = {int(line.split()[0]): line for line in table.strip().splitlines()}
    assert set(codes) == {0, 1, 2, 3, 130}
    assert "check failed" in codes[1] and "usage or input" in codes[2]
    assert "peer or network" in codes[3] and "interrupted" in codes[130]


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    from vfl.bench import BENCHMARKS
    from vfl.cli import bench, build_parser

    def walk(
        parser: argparse.ArgumentParser, name: str
    ) -> list[tuple[str, argparse.ArgumentParser]]:
        found = [(name, parser)]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, child in action.choices.items():
                    found += walk(child, f"{name} {sub}")
        return found

    found = walk(build_parser(), "vfl")
    return found + [(f"vfl bench {n}", bench._bench_parser(n)[0]) for n in BENCHMARKS]


def test_every_help_shows_every_default() -> None:
    missing = []
    parsers = _parsers()
    assert {"vfl run", "vfl psi", "vfl audit verify", "vfl bench splitnn"} <= {
        n for n, _ in parsers
    }
    for name, parser in parsers:
        formatter = parser._get_formatter()
        for action in parser._actions:
            default = action.default
            if (
                not action.option_strings
                or default in (None, False, argparse.SUPPRESS)
                or action.help is argparse.SUPPRESS
                or isinstance(action, argparse._HelpAction | argparse._VersionAction)
            ):
                continue
            text = " ".join(formatter._format_action(action).split())
            if "default" not in text.lower():
                missing.append(f"{name} {action.option_strings[0]} (default {default!r})")
    assert missing == []


def test_help_of_a_command_shows_its_defaults_in_a_real_process() -> None:
    run = " ".join(_vfl("run", "--help").stdout.split())
    assert (
        "seconds to wait for a peer: to reach it, and for any one message from it (default: 600.0)"
        in run
    )
    psi = " ".join(_vfl("psi", "--help").stdout.split())
    assert "job id shared by all parties (default: vfl-psi)" in psi
    bench = " ".join(_vfl("bench", "fedavg", "--help").stdout.split())
    assert "--rounds ROUNDS (default: 20)" in bench


@pytest.fixture
def federation(tmp_path: Path) -> Path:
    fed = make_federation(tmp_path / "fed", ["bank", "retailer"])
    pd.DataFrame({"id": range(50), "x": range(50)}).to_csv(tmp_path / "ids.csv", index=False)
    return fed


def _psi_args(fed: Path, party: str, *extra: str) -> list[str]:
    return ["psi", "--config", str(fed), "--party", party, "--input", "ids.csv"] + [
        "--id-column", "id", "--workers", "0", "--timeout", "30", *extra,
    ]  # fmt: skip


def test_input_errors_exit_2_in_one_line(federation: Path, tmp_path: Path) -> None:
    proc = _vfl("psi", "--config", str(federation), "--party", "bank", "--input", "nope.csv",
                "--id-column", "id", "--output", "out.csv", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "vfl: error: input file nope.csv not found\n"
    assert _vfl("psi", "--no-such-flag").returncode == 2  # argparse's usage errors: 2 as well


@pytest.mark.grpc
def test_a_peer_that_breaks_the_protocol_exits_3_at_both_parties(
    federation: Path, tmp_path: Path
) -> None:
    bank = _spawn(*_psi_args(federation, "bank", "--output", "bank.csv", "--json"), cwd=tmp_path)
    retailer = _spawn(*_psi_args(federation, "retailer", "--reveal", "size"), cwd=tmp_path)
    for proc, peer in ((bank, "retailer"), (retailer, "bank")):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, err
        assert err.strip().splitlines()[-1].startswith(f"vfl: error: reveal mode mismatch: {peer}")
    assert not (tmp_path / "bank.csv").exists()


@pytest.mark.grpc
def test_ctrl_c_exits_130_and_writes_nothing(federation: Path, tmp_path: Path) -> None:
    # The bank waits for a retailer that never comes; its progress bar shows it is running.
    bank = _spawn(*_psi_args(federation, "bank", "--output", "bank.csv"), cwd=tmp_path)
    assert bank.stderr is not None
    seen = ""
    while "psi" not in seen:
        char = bank.stderr.read(1)
        assert char, f"vfl psi ended early: {seen}"
        seen += char
    time.sleep(0.5)
    bank.send_signal(signal.SIGINT)
    _, err = bank.communicate(timeout=60)
    assert bank.returncode == 130
    assert err.strip().splitlines()[-1] == "vfl: interrupted"
    assert not (tmp_path / "bank.csv").exists()
    assert not list(tmp_path.glob(".bank.csv.*"))


def _split_nn_job(tmp_path: Path, *, shared: int) -> Path:
    g = read_fate("breast_hetero_guest.csv")
    h = read_fate("breast_hetero_host.csv")
    g.iloc[:540].to_csv(tmp_path / "bank.csv", index=False)
    pd.concat([h.iloc[540:], h.iloc[:shared]]).to_csv(tmp_path / "retailer.csv", index=False)
    job = tmp_path / "job.toml"
    job.write_text(
        '[job]\nid = "cli-split-nn"\ntype = "split_nn"\nlabel_party = "bank"\n\n'
        '[parties.bank]\ndata = "bank.csv"\nid_column = "id"\nlabel_column = "y"\n\n'
        '[parties.retailer]\ndata = "retailer.csv"\nid_column = "id"\n\n'
        '[crypto]\nscheme = "plain"\n\n[evaluation]\ntest_fraction = 0.2\nseed = 0\n\n'
        "[model]\nepochs = 3\nbatch_size = 64\nlearning_rate = 0.05\n"
    )
    return job


def _run_args(job: Path, fed: Path, party: str, work: Path, *extra: str) -> list[str]:
    return ["run", str(job), "--config", str(fed), "--party", party]  + [
        "--work-dir", str(work / party), "--timeout", "60", *extra,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.grpc
def test_vfl_run_shows_psi_and_split_nn_progress_on_stderr_and_none_with_json(
    federation: Path, tmp_path: Path
) -> None:
    job = _split_nn_job(tmp_path, shared=500)
    bank = _spawn(*_run_args(job, federation, "bank", tmp_path), cwd=tmp_path)
    retailer = _spawn(*_run_args(job, federation, "retailer", tmp_path, "--json"), cwd=tmp_path)
    out = {}
    for party, proc in (("bank", bank), ("retailer", retailer)):
        out[party] = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[party][1][-2000:]
    bank_out, bank_err = out["bank"]
    assert "cli-split-nn bank: 500 aligned rows" in bank_out
    final = [part.strip() for part in bank_err.replace("\r", "\n").splitlines() if part.strip()]
    assert any(line.startswith("psi: 100%") for line in final), bank_err
    assert any(line.startswith("split NN: 100%") and "3/3" in line for line in final), bank_err
    retailer_out, retailer_err = out["retailer"]
    assert json.loads(retailer_out)["psi"]["intersection_size"] == 500
    for bar in ("psi: ", "split NN: ", "pt/s", "epoch/s", "\r"):
        assert bar not in retailer_err, retailer_err


@pytest.mark.slow
@pytest.mark.grpc
def test_vfl_run_refuses_a_tiny_overlap_at_both_processes(federation: Path, tmp_path: Path) -> None:
    job = _split_nn_job(tmp_path, shared=6)
    procs = {
        party: _spawn(*_run_args(job, federation, party, tmp_path, "--json"), cwd=tmp_path)
        for party in ("bank", "retailer")
    }
    for party, ids, peer in (("bank", 540, "retailer"), ("retailer", 35, "bank")):
        stdout, stderr = procs[party].communicate(timeout=300)
        assert procs[party].returncode == 2, stderr[-2000:]
        assert stdout == ""
        last = stderr.strip().splitlines()[-1]
        assert last.startswith(f"vfl: error: only 6 of {ids} ids are shared with {peer}: ")
        assert "a split_nn job needs" in last
        run = tmp_path / party / "runs" / "cli-split-nn" / party
        assert json.loads((run / "status.json").read_text())["phase"] == "failed"
        assert not (run / "result.json").exists()
