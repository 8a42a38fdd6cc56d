"""One protocol, one test suite, two transports: in-memory threads and gRPC between processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from tests.protocols import example_protocol
from tests.protocols.grpc_harness import make_federation, run_grpc_parties

pytest.importorskip("crypto.paillier")
pytestmark = pytest.mark.filterwarnings("ignore:INSECURE:UserWarning")

Runner = Callable[[dict[str, str]], dict[str, Any]]
FUNCTIONS = {
    "bank": "tests.protocols.example_protocol:bank",
    "retailer": "tests.protocols.example_protocol:retailer",
}


def _memory(functions: dict[str, str]) -> dict[str, Any]:
    net = InMemoryNetwork(list(functions), job_id="example", seed=0)
    fns = {p: getattr(example_protocol, ref.split(":")[1]) for p, ref in functions.items()}
    return run_parties(fns, network=net, timeout=60)


@pytest.fixture(params=["memory", pytest.param("grpc", marks=[pytest.mark.grpc, pytest.mark.slow])])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Runner:
    if request.param == "memory":
        return _memory
    config = make_federation(tmp_path / "fed", ["bank", "retailer"])
    return lambda functions: run_grpc_parties(config, functions, job="example", timeout=120)


def test_encrypted_sum_matches_plaintext(run: Runner) -> None:
    results = run(FUNCTIONS)
    assert results["retailer"] == "done"
    reference = example_protocol.A + example_protocol.B
    np.testing.assert_allclose(results["bank"]["a+b"], reference, atol=1e-6)
    assert results["bank"]["sum"] == pytest.approx(reference.sum(), abs=1e-6)


def test_retailer_sees_only_ciphertexts_and_the_public_key() -> None:
    from crypto.paillier import EncryptedArray, PaillierPublicKey

    net = InMemoryNetwork(["bank", "retailer"], job_id="example", seed=0)
    run_parties(
        {"bank": example_protocol.bank, "retailer": example_protocol.retailer},
        network=net,
        timeout=60,
    )
    received = net.transcript.received_by("retailer")
    assert [m.topic for m in received] == ["example/public-key", "example/a"]
    assert isinstance(received[0].payload, PaillierPublicKey)
    assert isinstance(received[1].payload, EncryptedArray)
    to_bank = net.transcript.received_by("bank")
    assert all(isinstance(m.payload, EncryptedArray) for m in to_bank)
    assert not any(isinstance(m.payload, np.ndarray) for m in net.transcript)


def test_every_payload_kind_survives_a_round_trip(run: Runner) -> None:
    results = run(
        {
            "bank": "tests.protocols.example_protocol:echo_sender",
            "retailer": "tests.protocols.example_protocol:echo_receiver",
        }
    )
    assert results["retailer"] == 6
    assert results["bank"] == dict.fromkeys(results["bank"], True) and len(results["bank"]) == 6
