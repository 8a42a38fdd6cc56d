"""Split NN control messages: typed on the wire, and a deviating label party's dicts are refused."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from crypto.random import SeededRandom
from protocols.channel import Channel
from protocols.codecs import CodecContext
from protocols.errors import CodecError
from protocols.memory import InMemoryNetwork
from protocols.messages import StructCodec
from protocols.testkit import run_parties
from vfl.errors import VflError
from vfl.split_nn import CryptoConfig, Scheme, SplitNNConfig, SplitNNFeatureParty, build_mlp
from vfl.split_nn._backends import make_key_owner
from vfl.split_nn._messages import Control, Hello, Plan, Resume, Verdict

torch.set_num_threads(1)


def _config() -> SplitNNConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crypto = CryptoConfig(scheme=Scheme.PLAIN, key_bits=1024, insecure_allow_small_keys=True)
        return SplitNNConfig(epochs=1, batch_size=16, interactive_units=2, crypto=crypto)


def _roundtrip(message: Any) -> Any:
    codec = StructCodec()
    data = b"".join(bytes(p) for p in codec.encode(message, CodecContext()))
    return codec.decode(memoryview(data), CodecContext())


@pytest.mark.parametrize(
    "message",
    [
        Hello(config="ab" * 32, rows=10, train=True, dim=4, checkpoints=(0, 2)),
        Hello(config="cd", rows=3, train=False),
        Plan(fan_in=12),
        Resume(epoch=None),
        Resume(epoch=3),
        Control(stop=True),
        Verdict(best=False),
    ],
)
def test_messages_round_trip_through_the_struct_codec(message: Any) -> None:
    assert _roundtrip(message) == message


def test_a_message_with_a_wrong_field_type_does_not_decode() -> None:
    forged = object.__new__(Plan)  # what a deviating peer can put on the wire: no __post_init__
    object.__setattr__(forged, "fan_in", "12")
    with pytest.raises(CodecError, match="Plan.fan_in must be an integer"):
        _roundtrip(forged)


def _deviating_label(plan: Any) -> Any:
    """A label party that opens the session correctly, then sends ``plan`` as the plan."""

    def run(ch: Channel) -> None:
        cfg = _config()
        ch.send("retailer", "snn/hello", Hello(config=cfg.fingerprint(), rows=20, train=True))
        ch.recv("retailer", "snn/hello")
        ch.recv("retailer", "snn/key")
        ch.send("retailer", "snn/key", make_key_owner(cfg.crypto, rng=SeededRandom(1)).public)
        ch.send("retailer", "snn/plan", plan)

    return run


@pytest.mark.parametrize("plan", [{"fan_in": 8}, [8], Control(stop=False)])
def test_the_feature_party_refuses_a_plan_that_is_not_a_plan_message(plan: Any) -> None:
    net = InMemoryNetwork(["bank", "retailer"], job_id="snn-msg", seed=0)
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=["a", "b", "c"])
    feature = SplitNNFeatureParty(
        build_mlp([3, 4]), config=_config(), label_party="bank", rng=SeededRandom(2)
    )
    with pytest.raises(VflError, match="bank sent a malformed snn/plan message"):
        run_parties(
            {"bank": _deviating_label(plan), "retailer": lambda ch: feature.fit(frame, channel=ch)},
            network=net,
            timeout=30,
        )
