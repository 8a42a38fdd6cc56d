"""The worked example of docs/protocol-testing.md, verbatim: keep the two in sync."""

from __future__ import annotations

import numpy as np
import pytest

from protocols.channel import Channel
from protocols.errors import ChannelTimeout
from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties


# --- the protocol under test: the retailer learns only the total of the bank's vector ----------
def bank(ch: Channel) -> None:
    salary = np.array([3200.0, 4100.0, 2800.0])
    mask = np.array([17.0, -3.0, 5.5])  # stands in for a real masking protocol
    ch.send("retailer", "sum/masked", salary + mask)
    ch.send("retailer", "sum/mask-total", float(mask.sum()))


def retailer(ch: Channel) -> float:
    masked = ch.recv("bank", "sum/masked")
    mask_total: float = ch.recv("bank", "sum/mask-total")
    return float(masked.sum()) - mask_total


# --- the tests ------------------------------------------------------------------------------
def test_total_is_correct_and_nothing_else_leaks() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="docs-example", seed=0)
    results = run_parties({"bank": bank, "retailer": retailer}, network=net, timeout=10)

    assert results["retailer"] == pytest.approx(3200.0 + 4100.0 + 2800.0)
    # Leakage: what did the retailer actually receive?
    received = net.transcript.received_by("retailer")
    assert [m.topic for m in received] == ["sum/masked", "sum/mask-total"]
    assert not np.allclose(received[0].payload, [3200.0, 4100.0, 2800.0])


def test_a_lost_message_makes_the_retailer_time_out_not_hang() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="docs-example", seed=0, default_timeout=0.5)
    net.faults.drop(sender="bank", topic="sum/mask-total")
    with pytest.raises(ChannelTimeout, match="sum/mask-total"):
        run_parties({"bank": bank, "retailer": retailer}, network=net, timeout=10)


def test_a_tampered_message_is_rejected_and_never_delivered() -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="docs-example", seed=0, default_timeout=0.5)
    net.faults.tamper(sender="bank", topic="sum/masked")
    with pytest.raises(ChannelTimeout):
        run_parties({"bank": bank, "retailer": retailer}, network=net, timeout=10)
    assert net.counter("retailer")["bad_signature"] == 1
    assert net.transcript.on_topic("sum/masked") == []


def test_the_docs_show_this_file() -> None:
    from pathlib import Path

    here = Path(__file__)
    docs = (here.parents[2] / "docs" / "protocol-testing.md").read_text()
    example = here.read_text().split("import numpy as np", 1)[1].split("\n\n\ndef test_the_docs")[0]
    assert "import numpy as np" + example in docs
