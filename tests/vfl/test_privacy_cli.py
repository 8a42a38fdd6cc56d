"""``vfl privacy epsilon`` and ``vfl privacy noise``."""

from __future__ import annotations

import argparse
import json

import pytest

from vfl.cli import privacy
from vfl.errors import ConfigError
from vfl.privacy import epsilon_for_plan


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vfl")
    privacy.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["privacy", *argv])
    result: int = args.func(args)
    return result


PLAN = ["--sampling-rate", "0.01", "--steps", "1000", "--delta", "1e-5"]


def test_epsilon_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["epsilon", "--noise-multiplier", "1.1", *PLAN, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epsilon"] == pytest.approx(1.7118, abs=1e-4)
    assert out["noise_multiplier"] == 1.1 and out["steps"] == 1000 and out["accountant"] == "rdp"


def test_noise_json_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["noise", "--epsilon", "3", *PLAN, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epsilon"] <= 3.0 and out["target_epsilon"] == 3.0
    eps = epsilon_for_plan(
        noise_multiplier=out["noise_multiplier"], sampling_rate=0.01, steps=1000, delta=1e-5
    )
    assert eps == pytest.approx(3.0, rel=1e-3)


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["epsilon", "--noise-multiplier", "1.1", *PLAN]) == 0
    assert capsys.readouterr().out.startswith("epsilon = 1.7118 at delta = 1e-05")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["epsilon", "--noise-multiplier", "0", *PLAN], "--noise-multiplier"),
        (
            [
                "epsilon",
                "--noise-multiplier",
                "1",
                "--sampling-rate",
                "2",
                "--steps",
                "1",
                "--delta",
                "1e-5",
            ],
            "--sampling-rate",
        ),
        (["noise", "--epsilon", "-1", *PLAN], "--epsilon"),
        (
            [
                "noise",
                "--epsilon",
                "1",
                "--sampling-rate",
                "0.1",
                "--steps",
                "0",
                "--delta",
                "1e-5",
            ],
            "--steps",
        ),
        (
            ["noise", "--epsilon", "1", "--sampling-rate", "0.1", "--steps", "5", "--delta", "1"],
            "--delta",
        ),
    ],
)
def test_bad_input_is_a_config_error(argv: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _run(argv)
