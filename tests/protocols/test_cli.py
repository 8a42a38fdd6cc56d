"""``vfl certs init`` and ``vfl serve`` as a user runs them, and federation.toml validation."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.config import load_federation
from protocols.errors import ConfigError
from tests.protocols.grpc_harness import ROOT, free_port

# The commands run through their own modules' ``register``/``func`` (the same objects ``vfl``
# uses once they are listed in vfl.cli._COMMANDS), with vfl's one-line error convention.
_MAIN = """
import argparse, sys
from vfl.cli import certs, serve
from vfl.errors import VflError
from protocols.errors import ProtocolError
parser = argparse.ArgumentParser(prog="vfl")
sub = parser.add_subparsers(dest="command", required=True)
certs.register(sub)
serve.register(sub)
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.func(args))
except (VflError, ProtocolError, OSError) as exc:
    print(f"vfl: error: {exc}", file=sys.stderr)
    sys.exit(2)
"""


def _vfl(*args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, *args]


def _certs_init(out: Path, *extra: str) -> dict[str, object]:
    proc = subprocess.run(
        _vfl("certs", "init", "--parties", "bank,retailer", "--out", str(out), "--json", *extra),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_certs_init_makes_a_loadable_federation(tmp_path: Path) -> None:
    out = tmp_path / "fed"
    result = _certs_init(out, "--host", "node1.example.org")
    config = load_federation(result["federation"])  # type: ignore[arg-type]
    assert sorted(config.parties) == ["bank", "retailer"]
    for party in ("bank", "retailer"):
        for private in ("tls.key", "signing.key"):
            assert stat.S_IMODE(os.stat(out / party / private).st_mode) == 0o600
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((out / "bank" / "tls.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"bank", "localhost", "node1.example.org"} <= set(san.get_values_for_type(x509.DNSName))
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    again = subprocess.run(
        _vfl("certs", "init", "--parties", "bank,retailer", "--out", str(out)),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert again.returncode == 2 and "exists" in again.stderr


def test_serve_runs_until_sigterm_and_answers_health_checks(tmp_path: Path) -> None:
    out = tmp_path / "fed"
    _certs_init(out, "--base-port", str(free_port()))
    proc = subprocess.Popen(
        _vfl("serve", "--config", str(out / "federation.toml"), "--party", "bank", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, GRPC_VERBOSITY="ERROR"),
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["status"] == "serving"
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        creds = grpc.ssl_channel_credentials(
            root_certificates=(out / "ca.pem").read_bytes(),
            private_key=(out / "retailer" / "tls.key").read_bytes(),
            certificate_chain=(out / "retailer" / "tls.pem").read_bytes(),
        )
        with grpc.secure_channel(
            f"127.0.0.1:{info['port']}", creds, options=[("grpc.ssl_target_name_override", "bank")]
        ) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="vfl.federation.v1.PartyService"), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _write(tmp_path: Path, text: str) -> Path:
    from protocols.pki import init_federation

    fed = init_federation(["bank", "retailer"], tmp_path)
    path = tmp_path / "custom.toml"
    path.write_text(fed.read_text() + text)
    return path


@pytest.mark.parametrize(
    "extra,key",
    [
        ('\n[parties.insurer]\naddress = "127.0.0.1:1"\n', "parties.insurer.signing_public_key"),
        (
            '\n[parties.insurer]\naddress = "nope"\ntls_cert = "ca.pem"\nsigning_public_key = "AAAA"\n',
            "parties.insurer.address",
        ),
        (
            '\n[parties.insurer]\naddress = "h:1"\ntls_cert = "ca.pem"\nsigning_public_key = "AAAA"\n',
            "parties.insurer.signing_public_key",
        ),
        (
            '\n[parties.insurer]\naddress = "h:1"\ntls_cert = "missing.pem"\nsigning_public_key = "x"\n',
            "parties.insurer.tls_cert",
        ),
        (
            '\n[parties.insurer]\naddress = 5\ntls_cert = "ca.pem"\nsigning_public_key = "x"\n',
            "parties.insurer.address",
        ),
        ('\n[parties.insurer]\ncolour = "red"\n', "parties.insurer.colour"),
        ("\n[extra]\n", "extra"),
    ],
)
def test_federation_errors_name_the_key(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_federation(_write(tmp_path, extra))


def test_base64_public_key_and_signing_key_check(tmp_path: Path) -> None:
    from crypto.keys import VerifyKey

    path = _write(tmp_path, "")
    text = path.read_text().replace(
        'signing_public_key = "retailer/signing.pub.pem"',
        f'signing_public_key = "{VerifyKey.load(tmp_path / "retailer" / "signing.pub.pem").to_base64()}"',
    )
    path.write_text(text)
    config = load_federation(path)
    assert config.party("retailer").signing_public_key.fingerprint == (
        VerifyKey.load(tmp_path / "retailer" / "signing.pub.pem").fingerprint
    )
    assert config.signing_key("bank").verify_key == config.party("bank").signing_public_key
    with pytest.raises(ConfigError, match="parties.nobody"):
        config.party("nobody")
