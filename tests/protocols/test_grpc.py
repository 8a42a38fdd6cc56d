"""gRPC + mutual TLS between real OS processes on 127.0.0.1.

Proves: a client certificate from another CA is refused; TLS 1.2 is refused (``openssl
s_client -tls1_2``); a tampered payload, a replayed envelope, an envelope signed by the wrong
party and one sent over another party's TLS identity are each rejected with their own error
(at the sender) and counted (at the receiver); killing a party makes the other fail with
``PeerDown`` rather than hang; a 1 GiB payload passes with bounded receiver memory.
"""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

import protocols.grpc
from crypto.keys import SigningKey
from protocols._pb import pb_grpc
from protocols.codecs import CodecContext, default_registry
from protocols.config import load_federation
from protocols.envelope import seal
from protocols.errors import (
    BadSignature,
    ForeignJob,
    PeerDown,
    PeerIdentityMismatch,
    Replayed,
    SignerMismatch,
    UnknownSender,
    WrongReceiver,
)
from protocols.pki import init_federation
from tests.protocols.grpc_harness import ROOT, make_federation, result_of, spawn

pytestmark = pytest.mark.grpc
REGISTRY = default_registry()
JOB = "grpc-test"


def _stub(fed: Path, *, as_party: str, to: str, ca_dir: Path | None = None) -> Any:
    """A raw PartyService stub presenting ``as_party``'s certificate (from ``ca_dir``)."""
    config = load_federation(fed / "federation.toml")
    own = ca_dir or fed
    creds = grpc.ssl_channel_credentials(
        root_certificates=(fed / "ca.pem").read_bytes(),
        private_key=(own / as_party / "tls.key").read_bytes(),
        certificate_chain=(own / as_party / "tls.pem").read_bytes(),
    )
    channel = grpc.secure_channel(
        config.party(to).address, creds, options=[("grpc.ssl_target_name_override", to)]
    )
    return pb_grpc.PartyServiceStub(channel)


def _message(fed: Path, *, seq: int, payload: Any, signer: str = "retailer") -> tuple[Any, bytes]:
    key = SigningKey.load(fed / signer / "signing.key")
    encoded = REGISTRY.encode(payload, CodecContext())
    env = seal(
        key=key,
        job_id=JOB,
        session_id="",
        sender="retailer",
        receiver="bank",
        topic="attack",
        round=0,
        seq=seq,
        codec=encoded.codec,
        parts=encoded.parts,
    )
    return env, encoded.to_bytes()


@pytest.mark.slow
def test_attacks_are_rejected_each_with_its_own_error(tmp_path: Path) -> None:
    fed = tmp_path / "fed"
    config = make_federation(fed, ["bank", "retailer", "insurer"])
    bank = spawn(config, "bank", job=JOB, fn="tests.protocols.grpc_parties:collect_attacks")
    try:
        as_retailer = _stub(fed, as_party="retailer", to="bank")
        first, payload = _message(fed, seq=1, payload="hello")
        protocols.grpc.deliver(as_retailer, "bank", first, [payload], timeout=30)

        with pytest.raises(Replayed):
            protocols.grpc.deliver(as_retailer, "bank", first, [payload], timeout=10)

        env, payload = _message(fed, seq=2, payload="pay 10")
        tampered = payload.replace(b"10", b"99")
        with pytest.raises(BadSignature):
            protocols.grpc.deliver(as_retailer, "bank", env, [tampered], timeout=10)

        forged, payload = _message(fed, seq=3, payload="forged", signer="insurer")
        with pytest.raises(SignerMismatch, match="insurer"):
            protocols.grpc.deliver(as_retailer, "bank", forged, [payload], timeout=10)

        env, payload = _message(fed, seq=7, payload="x")
        key = SigningKey.load(fed / "retailer" / "signing.key")
        wrong = dataclasses.replace(env, receiver="insurer").signed_with(key)
        with pytest.raises(WrongReceiver):
            protocols.grpc.deliver(as_retailer, "bank", wrong, [payload], timeout=10)
        env, payload = _message(fed, seq=8, payload="x")
        mallory = dataclasses.replace(env, sender="mallory").signed_with(key)
        with pytest.raises(UnknownSender):
            protocols.grpc.deliver(as_retailer, "bank", mallory, [payload], timeout=10)
        other_job = dataclasses.replace(env, job_id="another-job").signed_with(key)
        with pytest.raises(ForeignJob):  # authentic, but no such session here: never delivered
            protocols.grpc.deliver(as_retailer, "bank", other_job, [payload], timeout=2)

        relayed, payload = _message(fed, seq=4, payload="relayed")
        as_insurer = _stub(fed, as_party="insurer", to="bank")
        with pytest.raises(PeerIdentityMismatch):
            protocols.grpc.deliver(as_insurer, "bank", relayed, [payload], timeout=10)

        # A client certificate from another CA fails the handshake: nothing gets through.
        other = tmp_path / "other-ca"
        init_federation(["retailer", "bank"], other)
        foreign = _stub(fed, as_party="retailer", to="bank", ca_dir=other)
        env, payload = _message(fed, seq=5, payload="foreign")
        with pytest.raises(PeerDown, match="unreachable"):
            protocols.grpc.deliver(foreign, "bank", env, [payload], timeout=3)

        done, payload = _message(fed, seq=6, payload="done")
        protocols.grpc.deliver(as_retailer, "bank", done, [payload], timeout=30)
        result = result_of(bank, "bank", timeout=60)
    finally:
        bank.kill()
        bank.wait()
    assert result["ok"], result
    assert result["value"] == ["hello", "done"]  # only the genuine messages were delivered
    counts = result["rejections"]
    assert counts["replayed"] == 1
    assert counts["bad_signature"] == 1
    assert counts["signer_mismatch"] == 1
    assert counts["tls_identity_mismatch"] == 1
    assert counts["wrong_receiver"] == 1


def _openssl(port: int, fed: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            f"-{version}",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            str(fed / "ca.pem"),
            "-cert",
            str(fed / "retailer" / "tls.pem"),
            "-key",
            str(fed / "retailer" / "tls.key"),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_tls12_is_refused_and_tls13_accepted(tmp_path: Path) -> None:
    fed = tmp_path / "fed"
    config = make_federation(fed, ["bank", "retailer"])
    port = int(load_federation(config).party("bank").address.rsplit(":", 1)[1])
    bank = spawn(config, "bank", job=JOB, fn="tests.protocols.grpc_parties:serve_until_done")
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the node listens
            tls13 = _openssl(port, fed, "tls1_3")
            if "TLSv1.3" in tls13.stdout or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        tls12 = _openssl(port, fed, "tls1_2")
    finally:
        bank.send_signal(signal.SIGKILL)
        bank.wait()
    assert "Cipher is TLS_AES" in tls13.stdout, tls13.stdout + tls13.stderr
    assert "Cipher is (NONE)" in tls12.stdout, tls12.stdout + tls12.stderr
    assert "TLSv1.2, Cipher is" not in tls12.stdout


@pytest.mark.slow
def test_killed_party_makes_the_other_fail_with_peer_down(tmp_path: Path) -> None:
    config = make_federation(tmp_path / "fed", ["bank", "retailer"])
    bank = spawn(config, "bank", job=JOB, fn="tests.protocols.grpc_parties:hang_after_ready")
    retailer = spawn(
        config, "retailer", job=JOB, fn="tests.protocols.grpc_parties:wait_for_dead_peer"
    )
    try:
        assert bank.stdout is not None
        line = bank.stdout.readline()
        assert line.strip() == "READY", line
        time.sleep(0.5)
        bank.send_signal(signal.SIGKILL)  # a crash: no goodbye message, no graceful shutdown
        result = result_of(retailer, "retailer", timeout=100)
    finally:
        for proc in (bank, retailer):
            proc.kill()
            proc.wait()
    assert result["ok"], result
    assert result["value"]["error"] == "PeerDown", result  # not ChannelTimeout: no hang


@pytest.mark.slow
def test_one_gib_payload_with_bounded_receiver_memory(tmp_path: Path) -> None:
    config = make_federation(tmp_path / "fed", ["bank", "retailer"])
    retailer = spawn(config, "retailer", job=JOB, fn="tests.protocols.grpc_parties:recv_big")
    bank = spawn(config, "bank", job=JOB, fn="tests.protocols.grpc_parties:send_big")
    try:
        received = result_of(retailer, "retailer", timeout=900)
        sent = result_of(bank, "bank", timeout=120)
    finally:
        for proc in (bank, retailer):
            proc.kill()
            proc.wait()
    assert sent["ok"] and received["ok"], (sent, received)
    value = received["value"]
    assert value["shape"] == [1 << 27] and value["dtype"] == "int64" and value["samples_ok"]
    growth_mib = (value["peak_kib"] - value["baseline_kib"]) / 1024
    print(f"1 GiB payload: receiver peak memory growth {growth_mib:.0f} MiB")
    assert growth_mib < 300, f"receiver memory grew by {growth_mib:.0f} MiB"


def test_envelope_dataclass_is_frozen() -> None:
    env, _ = _message_for_unit()
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.seq = 2  # type: ignore[misc]


def _message_for_unit() -> tuple[Any, bytes]:
    key = SigningKey.generate()
    return (
        seal(
            key=key,
            job_id="j",
            session_id="",
            sender="a",
            receiver="b",
            topic="t",
            round=0,
            seq=1,
            codec="bytes",
            parts=[b"\x01"],
        ),
        b"\x01",
    )


def test_node_fails_closed_when_the_tls_policy_could_not_apply(tmp_path: Path) -> None:
    """grpc imported before protocols: the policy cannot apply, so the node refuses to run."""
    config = make_federation(tmp_path / "fed", ["bank", "retailer"])
    code = (
        "import grpc\n"  # first, on purpose
        "import protocols.grpc\n"
        "from protocols.config import load_federation\n"
        "from protocols.errors import ConfigError\n"
        f"node = protocols.grpc.PartyNode(load_federation({str(config)!r}), 'bank')\n"
        "try:\n"
        "    node.start()\n"
        "except ConfigError as exc:\n"
        "    print('REFUSED', exc)\n"
        "else:\n"
        "    node.stop(0)\n"
        "    print('STARTED')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GRPC_SSL_CIPHER_SUITES"},
    )
    assert "REFUSED the gRPC server accepts TLS 1.2" in proc.stdout, proc.stdout + proc.stderr
