"""The direct TLS probe that classifies a failed handshake, against a real node."""

from __future__ import annotations

from pathlib import Path

import pytest

import protocols.grpc
from protocols.config import load_federation
from protocols.grpc._tls_probe import certificate_problem, looks_like_tls_failure
from tests.protocols.grpc_harness import free_port, make_federation

pytestmark = pytest.mark.grpc


def test_probe_names_each_certificate_problem_and_nothing_else(tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "fed", ["bank", "retailer"])
    foreign = make_federation(tmp_path / "foreign", ["bank", "retailer"]).parent
    config = load_federation(fed)
    address = config.party("bank").address
    ca = (fed.parent / "ca.pem").read_bytes()
    ours = {
        "cert_pem": (fed.parent / "retailer" / "tls.pem").read_bytes(),
        "key_pem": (fed.parent / "retailer" / "tls.key").read_bytes(),
    }
    strange = {
        "cert_pem": (foreign / "retailer" / "tls.pem").read_bytes(),
        "key_pem": (foreign / "retailer" / "tls.key").read_bytes(),
    }
    # Nothing listens yet: no verdict (the caller keeps retrying).
    assert certificate_problem("bank", address, ca_pem=ca, **ours) is None
    with protocols.grpc.PartyNode(config, "bank", check_tls13=False):
        assert certificate_problem("bank", address, ca_pem=ca, **ours) is None  # all fine
        refused = certificate_problem("bank", address, ca_pem=ca, **strange)
        assert refused is not None and refused.startswith(
            f"peer 'bank' at {address} refused this party's certificate"
        )
        foreign_ca = (foreign / "ca.pem").read_bytes()
        untrusted = certificate_problem("bank", address, ca_pem=foreign_ca, **strange)
        assert untrusted is not None and untrusted.startswith(
            "peer 'bank' presented a certificate not issued by this federation's CA"
        )
        misnamed = certificate_problem("retailer", address, ca_pem=ca, **ours)
        assert misnamed is not None and "does not name 'retailer'" in misnamed
    assert certificate_problem("bank", f"127.0.0.1:{free_port()}", ca_pem=ca, **ours) is None


def test_only_tls_status_texts_are_probed() -> None:
    assert looks_like_tls_failure(
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Ssl handshake failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: CERTIFICATE_VERIFY_FAILED"
    )
    assert looks_like_tls_failure(
        "Custom verification check failed with error: UNAUTHENTICATED: Hostname Verification "
        "Check failed."
    )
    assert not looks_like_tls_failure(
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Failed to connect to remote host: Connection refused"
    )
