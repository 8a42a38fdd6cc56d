"""``vfl certs init --address``: a federation whose parties are on other hosts (no root needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from protocols.config import load_federation
from vfl.cli import main as vfl_main


def _sans(cert: Path) -> list[str]:
    ext = x509.load_pem_x509_certificate(cert.read_bytes()).extensions
    return [str(n.value) for n in ext.get_extension_for_class(x509.SubjectAlternativeName).value]


def test_addresses_go_into_the_federation_and_the_sans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fed"
    argv = ["certs", "init", "--parties", "bank,retailer", "--out", str(out), "--json"]
    argv += ["--address", "bank=10.0.0.1:50051", "--address", "retailer=node2.example.org:443"]
    assert vfl_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    config = load_federation(out / "federation.toml")
    assert config.party("bank").address == "10.0.0.1:50051"
    assert config.party("retailer").address == "node2.example.org:443"
    assert result["parties"]["retailer"]["address"] == "node2.example.org:443"
    sans = _sans(out / "bank" / "tls.pem")
    assert sans[:3] == ["bank", "localhost", "127.0.0.1"]
    # Each certificate vouches for its own party's host only.
    assert "10.0.0.1" in sans and "node2.example.org" not in sans
    retailer = _sans(out / "retailer" / "tls.pem")
    assert retailer[0] == "retailer"
    assert "node2.example.org" in retailer and "10.0.0.1" not in retailer


def test_a_wildcard_listening_address_is_not_a_san(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["certs", "init", "--parties", "bank,retailer", "--out", str(tmp_path / "fed")]
    argv += ["--address", "bank=0.0.0.0:50051", "--address", "retailer=[::1]:50052"]
    assert vfl_main(argv) == 0
    capsys.readouterr()
    assert load_federation(tmp_path / "fed" / "federation.toml").party("bank").address == (
        "0.0.0.0:50051"
    )
    assert "0.0.0.0" not in _sans(tmp_path / "fed" / "bank" / "tls.pem")
    assert "::1" in _sans(tmp_path / "fed" / "retailer" / "tls.pem")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bank=10.0.0.1", "--address 'bank=10.0.0.1': the address must be HOST:PORT"),
        ("bank=10.0.0.1:0", "--address 'bank=10.0.0.1:0': the address must be HOST:PORT"),
        ("bank=:50051", "--address 'bank=:50051': the address must be HOST:PORT"),
        ("eve=10.0.0.9:1", "must be PARTY=HOST:PORT with PARTY in --parties"),
        ("10.0.0.1:50051", "must be PARTY=HOST:PORT with PARTY in --parties"),
    ],
)
def test_bad_address_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    argv = ["certs", "init", "--parties", "bank,retailer", "--out", str(tmp_path / "fed")]
    assert vfl_main([*argv, "--address", value]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vfl: error: --address") and message in err and "\n" not in err
    assert not (tmp_path / "fed" / "federation.toml").exists()


def test_same_party_twice_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["certs", "init", "--parties", "bank,retailer", "--out", str(tmp_path / "fed")]
    argv += ["--address", "bank=10.0.0.1:1", "--address", "bank=10.0.0.2:1"]
    assert vfl_main(argv) == 2
    assert "vfl: error: --address: bank is given twice" in capsys.readouterr().err
