"""docs/deploy.md's recipe for organisations with their own CAs, run as written.

The bank and the retailer each have their own CA (``docs/deploy/party-cert.sh ca``); each party
makes its key and request (``csr``), its organisation's CA signs it (``sign``), and the federation
file's CA is the bundle of both CAs. Two nodes then talk over mutual TLS 1.3 (each node's start-up
self-check proves TLS 1.2 is refused), and a node whose certificate comes from a CA outside the
bundle is refused.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import protocols.grpc
from crypto.keys import SigningKey
from protocols.config import load_federation
from protocols.errors import UntrustedPeer
from tests.protocols.grpc_harness import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "deploy" / "party-cert.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("sh") is None,
    reason="needs the openssl command and a POSIX sh",
)


def _sh(*args: str | Path) -> None:
    done = subprocess.run(
        ["sh", str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def _party(root: Path, party: str, org_ca: Path) -> None:
    """The party's TLS key and request, signed by its organisation's CA; its signing key."""
    _sh("csr", party, root / party)
    _sh("sign", party, root / party / "tls.csr", org_ca / "ca.pem", org_ca / "ca.key",
        root / party / "tls.pem", "127.0.0.1")  # fmt: skip
    key = SigningKey.generate()
    key.save(root / party / "signing.key")
    key.verify_key.save(root / party / "signing.pub.pem")


def _federation(root: Path, ca: str) -> Path:
    lines = ["[federation]", f'ca = "{ca}"', ""]
    for party in ("bank", "retailer"):
        lines += [f"[parties.{party}]", f'address = "127.0.0.1:{free_port()}"']
        lines += [f'tls_cert = "{party}/tls.pem"', f'tls_key = "{party}/tls.key"']
        lines += [f'signing_public_key = "{party}/signing.pub.pem"']
        lines += [f'signing_key = "{party}/signing.key"', ""]
    path = root / f"federation-{Path(ca).stem}.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.mark.grpc
def test_two_organisation_cas_in_one_federation(tmp_path: Path) -> None:
    _sh("ca", "Bank federation CA", tmp_path / "bank-ca")
    _sh("ca", "Retailer federation CA", tmp_path / "retailer-ca")
    _party(tmp_path, "bank", tmp_path / "bank-ca")
    _party(tmp_path, "retailer", tmp_path / "retailer-ca")
    bundle = (tmp_path / "bank-ca" / "ca.pem").read_text()
    bundle += (tmp_path / "retailer-ca" / "ca.pem").read_text()
    (tmp_path / "cas.pem").write_text(bundle)

    config = load_federation(_federation(tmp_path, "cas.pem"))
    with (
        protocols.grpc.PartyNode(config, "bank") as bank,
        protocols.grpc.PartyNode(config, "retailer") as retailer,
    ):
        to_retailer, to_bank = bank.channel("own-ca"), retailer.channel("own-ca")
        to_retailer.send("retailer", "hello", b"from the bank")
        assert to_bank.recv("bank", "hello", timeout=30) == b"from the bank"
        to_bank.send("bank", "hello", b"from the retailer")
        assert to_retailer.recv("retailer", "hello", timeout=30) == b"from the retailer"
        to_retailer.close()
        to_bank.close()


@pytest.mark.grpc
def test_a_ca_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    _sh("ca", "Bank federation CA", tmp_path / "bank-ca")
    _sh("ca", "Retailer federation CA", tmp_path / "retailer-ca")
    _party(tmp_path, "bank", tmp_path / "bank-ca")
    _party(tmp_path, "retailer", tmp_path / "retailer-ca")
    # The federation trusts only the bank's CA: the retailer's certificate chains to nothing.
    config = load_federation(_federation(tmp_path, "bank-ca/ca.pem"))
    with protocols.grpc.PartyNode(config, "bank"):
        retailer = protocols.grpc.PartyNode(config, "retailer", check_tls13=False).start()
        try:
            # A refused certificate is a permanent error naming the peer, raised at once rather
            # than retried for the whole send window (600 s here) like a network outage.
            channel = retailer.channel("own-ca", send_timeout=600.0)
            with pytest.raises(UntrustedPeer, match="peer 'bank' at .* refused this party's"):
                channel.send("bank", "hello", b"refused")
            channel.close()
        finally:
            retailer.stop(grace=0)


def test_sign_refuses_a_request_for_another_party(tmp_path: Path) -> None:
    _sh("ca", "Bank federation CA", tmp_path / "ca")
    _sh("csr", "bank", tmp_path / "bank")
    done = subprocess.run(
        ["sh", str(SCRIPT), "sign", "retailer", str(tmp_path / "bank" / "tls.csr"),
         str(tmp_path / "ca" / "ca.pem"), str(tmp_path / "ca" / "ca.key"), str(tmp_path / "x.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "want CN=retailer" in done.stderr and not (tmp_path / "x.pem").exists()
