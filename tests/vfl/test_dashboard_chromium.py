"""The dashboard page in headless Chromium: it polls /api/status and draws the live rounds.

The job advances *between the page's polls*: the server appends rounds to the run files while
answering the page's third status request, exactly as ``vfl run`` appends them, so the values
of those rounds can only reach the DOM through the page's own polling and drawing. The
screenshot and the dumped DOM are kept as artefacts (``$VFL_TEST_ARTIFACTS`` or
``tests/artifacts/``).
"""

from __future__ import annotations

import protocols  # noqa: F401  (first: sets gRPC's TLS policy before grpc is imported)

# isort: split

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.config import load_federation
from protocols.grpc import PartyNode
from tests import _browser as browser
from tests.protocols.grpc_harness import make_federation
from tests.vfl.test_dashboard import PEERS, TOKEN, RunWriter, training_run
from vfl.dashboard import DashboardServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = browser.CHROMIUM
artifacts = browser.artifacts

pytestmark = [browser.needs_chromium]

# Appended while the page runs: distinctive values that appear nowhere before the 3rd poll.
LIVE_ROUNDS = {4: (0.3131, 0.8787), 5: (0.2929, 0.8989), 6: (0.2727, 0.9191)}


class LiveDashboard(DashboardServer):
    """A dashboard whose job advances while the page polls it (module docstring)."""

    def __init__(self, run: RunWriter, **kwargs: Any) -> None:
        super().__init__(run.dir.parents[2], **kwargs)
        self.run = run
        self.polls = 0

    def status(self, *, job: str | None = None, party: str | None = None) -> dict[str, Any] | None:
        self.polls += 1
        if self.polls == 3:
            for n, (loss, auc) in LIVE_ROUNDS.items():
                self.run.round(n, loss=loss, auc=auc, dropped=("insurer",) if n == 5 else ())
            self.run.event("alert", alert="silent_party", message="party insurer went quiet")
        return super().status(job=job, party=party)


@pytest.fixture
def bank_node(tmp_path: Path) -> Iterator[PartyNode]:
    """The bank's node with the retailer's node up and the insurer's never started."""
    config = load_federation(make_federation(tmp_path / "fed", ["bank", *PEERS]))
    retailer = PartyNode(config, "retailer", heartbeat_interval=0.5).start()
    bank = PartyNode(config, "bank", heartbeat_interval=0.5).start()
    try:
        yield bank
    finally:
        bank.stop(grace=0)
        retailer.stop(grace=0)


def wait_until_up(server: DashboardServer, peer: str) -> None:
    deadline = time.monotonic() + 60
    while server.health()[peer]["state"] != "up":
        assert time.monotonic() < deadline, f"{peer} never came up"
        time.sleep(0.1)


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """The page after 20 s of page time (about ten polls of /api/status)."""
    return browser.chromium(
        url, profile, "--window-size=1280,1800", "--virtual-time-budget=20000", *extra
    )


def test_page_draws_rounds_appended_while_it_runs(tmp_path: Path, bank_node: PartyNode) -> None:
    run = training_run(tmp_path / "work", rounds=3)
    run.event("alert", alert="plateau", message="loss has not improved in 5 rounds")
    with LiveDashboard(run, token=TOKEN, node=bank_node) as server:
        wait_until_up(server, "retailer")
        dom = chromium(server.login_url, tmp_path / "profile-dom", "--dump-dom").stdout
        polls = server.polls
    out = artifacts()
    (out / "dashboard.html").write_text(dom)
    assert polls >= 4, f"the page polled /api/status {polls} times"
    # The appended rounds, drawn by the script: chart points and the recent-rounds table.
    for n, (loss, auc) in LIVE_ROUNDS.items():
        assert re.search(
            rf'<circle[^>]*data-series="loss"[^>]*data-round="{n}"[^>]*data-value="{loss}"', dom
        ), n
        assert re.search(
            rf'<circle[^>]*data-series="val_auc"[^>]*data-round="{n}"[^>]*data-value="{auc}"', dom
        ), n
        assert re.search(rf'<tr data-round="{n}"><th>{n}</th><td>{loss}</td>', dom), n
    # ... alongside the rounds that were there from the start.
    assert re.search(r'<circle[^>]*data-series="loss"[^>]*data-round="1"', dom)
    assert re.search(r'<tr data-metric="val_auc"><th>val_auc</th><td[^>]*>0.9191</td>', dom)
    assert '<div class="value" id="round">6 / 10</div>' in dom
    assert '<div class="value phase-train" id="phase">train</div>' in dom
    assert '<div class="value" id="epsilon">1.5</div>' in dom
    assert '<div class="value" id="alert-count">2</div>' in dom
    assert "party insurer went quiet" in dom and "loss has not improved" in dom
    assert '<tr data-peer="retailer"><th>retailer</th><td class="state-up">up</td>' in dom
    assert re.search(r'<tr data-peer="insurer"><th>insurer</th><td class="state-un', dom)
    assert "<td>insurer</td>" in dom  # round 5's dropout in the rounds table
    assert '<div id="conn" class="conn">live' in dom


def test_screenshot_of_the_live_page(tmp_path: Path, bank_node: PartyNode) -> None:
    run = training_run(tmp_path / "work", rounds=3)
    run.event("alert", alert="plateau", message="loss has not improved in 5 rounds")
    shot = artifacts() / "dashboard.png"
    shot.unlink(missing_ok=True)
    with LiveDashboard(run, token=TOKEN, node=bank_node) as server:
        wait_until_up(server, "retailer")
        chromium(server.login_url, tmp_path / "profile-shot", f"--screenshot={shot}")
        assert server.polls >= 3
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
