"""``vfl psi`` over the real gRPC + mutual-TLS transport (two party nodes on 127.0.0.1), and its
input errors (one line, before any network traffic, no output file)."""

from __future__ import annotations

import argparse
import json
import socket
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from psi import PSIUsageError
from tests._data import fate_csv
from vfl.cli import psi as psi_cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vfl")
    psi_cli.register(parser.add_subparsers(dest="command"))
    return parser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def federation(tmp_path: Path) -> Path:
    from protocols.pki import init_federation

    addresses = {name: f"127.0.0.1:{_free_port()}" for name in ("guest", "host")}
    return init_federation(["guest", "host"], tmp_path / "fed", addresses=addresses)


def _argv(fed: Path, party: str, src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "psi",
        "--config",
        str(fed),
        "--party",
        party,
        "--input",
        str(src),
        "--id-column",
        "id",
        "--output",
        str(out),
        "--workers",
        "0",
        "--json",
        *extra,
    ]


def _run_both(argvs: dict[str, list[str]]) -> dict[str, Any]:
    """Run ``vfl psi`` for every party in its own thread; return exit codes (or exceptions)."""
    codes: dict[str, Any] = {}

    def run(name: str) -> None:
        args = _parser().parse_args(argvs[name])
        try:
            codes[name] = args.func(args)
        except BaseException as exc:  # reported by the caller
            codes[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in argvs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return codes


@pytest.mark.grpc
def test_ids_above_2_to_the_53_stay_distinct(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """12345678901234567 and 12345678901234568 are one float64: read as strings, they differ."""
    guest_src, host_src = tmp_path / "guest.csv", tmp_path / "host.csv"
    guest_src.write_text("id,x\n12345678901234567,1\n12345678901234568,2\n7,3\n")
    host_src.write_text("id,y\n12345678901234568,9\n8,8\n")
    outs = {"guest": tmp_path / "guest_aligned.csv", "host": tmp_path / "host_aligned.csv"}
    argvs = {
        "guest": _argv(federation, "guest", guest_src, outs["guest"]),
        "host": _argv(federation, "host", host_src, outs["host"]),
    }
    assert _run_both(argvs) == {"guest": 0, "host": 0}
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert {line["intersection_size"] for line in lines} == {1}
    guest = pd.read_csv(outs["guest"], dtype={"id": str})
    host = pd.read_csv(outs["host"], dtype={"id": str})
    assert list(guest["id"]) == list(host["id"]) == ["12345678901234568"]
    assert list(guest["x"]) == [2] and list(host["y"]) == [9]


@pytest.mark.grpc
def test_two_parties_over_grpc_on_the_breast_files(
    federation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    guest_src = fate_csv("breast_hetero_guest_sample_id.csv")
    host_src = fate_csv("breast_hetero_host_sample_id.csv")
    outs = {"guest": tmp_path / "guest_aligned.csv", "host": tmp_path / "host_aligned.csv"}
    argvs = {
        "guest": _argv(federation, "guest", guest_src, outs["guest"], "--duplicates", "first"),
        "host": _argv(federation, "host", host_src, outs["host"], "--duplicates", "first"),
    }
    assert _run_both(argvs) == {"guest": 0, "host": 0}
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    guest, host = pd.read_csv(outs["guest"]), pd.read_csv(outs["host"])
    expected = set(pd.read_csv(guest_src)["id"]) & set(pd.read_csv(host_src)["id"])
    assert list(guest["id"]) == list(host["id"]) and set(guest["id"]) == expected
    assert {line["intersection_size"] for line in lines} == {len(expected)}
    assert {line["output_rows"] for line in lines} == {len(expected)}


def test_missing_id_column_fails_before_the_network(federation: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("cid,x\r\n1,2\r\n")
    out = tmp_path / "out.csv"
    args = _parser().parse_args(_argv(federation, "guest", src, out))
    with pytest.raises(PSIUsageError, match="id column 'id' not in"):
        args.func(args)
    assert not out.exists()


def test_duplicates_and_nulls_fail_with_one_line(federation: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    args = _parser().parse_args(
        _argv(federation, "guest", fate_csv("breast_hetero_guest_sample_id.csv"), out)
    )
    with pytest.raises(PSIUsageError, match="duplicate rows") as info:
        args.func(args)
    assert "\n" not in str(info.value)
    src = tmp_path / "nulls.csv"
    src.write_text("id,x\n1,2\n,3\n4,5\n")
    args = _parser().parse_args(_argv(federation, "guest", src, out))
    with pytest.raises(PSIUsageError, match="1 null or blank ids"):
        args.func(args)
    assert not out.exists()


def test_output_required_unless_size(federation: Path, tmp_path: Path) -> None:
    argv = _argv(federation, "guest", tmp_path / "x.csv", tmp_path / "o.csv")
    argv.remove("--output")
    argv.remove(str(tmp_path / "o.csv"))
    args = _parser().parse_args(argv)
    with pytest.raises(PSIUsageError, match="--output is required"):
        args.func(args)
