"""``vfl serve --work-dir W --dashboard HOST:PORT`` as a user runs it: URL, token file, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.protocols.grpc_harness import ROOT, make_federation
from tests.vfl.test_dashboard import TOKEN, parse_exposition, training_run


def _serve(fed: Path, work: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vfl.cli", "serve", "--config", str(fed), "--party", "bank"]
        + ["--work-dir", str(work), "--heartbeat", "1", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, GRPC_VERBOSITY="ERROR"),
    )


def _get(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_starts_the_dashboard_with_a_fresh_private_token(tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "fed", ["bank", "retailer"])
    work = tmp_path / "work"
    training_run(work, rounds=2)
    proc = _serve(fed, work, "--dashboard", "127.0.0.1:0", "--json")
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["status"] == "serving"
        token_file = work / "dashboard.token"
        assert info["dashboard_token_file"] == str(token_file)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        url = urlsplit(info["dashboard_url"])
        assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.path == "/"
        assert parse_qs(url.query) == {"token": [token]}
        base = f"http://127.0.0.1:{url.port}"
        assert _get(f"{base}/metrics", "not-the-token-at-all-xx")[0] == 401
        code, text = _get(f"{base}/metrics", token)
        samples = parse_exposition(text)
        labels = frozenset({("job", "credit-1"), ("party", "bank")})
        assert code == 200 and samples[("vfl_round", labels)] == 2
        peer = frozenset({("party", "bank"), ("peer", "retailer")})
        assert samples[("vfl_peer_up", peer)] == 0  # the retailer's node is not running
        code, text = _get(f"{base}/api/status", token)
        assert code == 200 and json.loads(text)["health"]["retailer"]["state"] != "up"
    finally:
        _stop(proc)


def test_serve_with_a_token_file_and_bad_dashboard_flags(tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "fed", ["bank", "retailer"])
    given = tmp_path / "token"
    given.write_text(TOKEN + "\n")
    proc = _serve(
        fed, tmp_path / "w", "--dashboard", "127.0.0.1:0", "--dashboard-token-file", str(given)
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # "bank serving on port ..."
        line = proc.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:") and f"token={TOKEN}" in line
        assert _get(line.split(" ", 1)[1].split("?")[0] + "metrics", TOKEN)[0] == 200
    finally:
        _stop(proc)
    bad = _serve(fed, tmp_path / "w2", "--dashboard", "nowhere", "--json")
    _, stderr = bad.communicate(timeout=60)
    assert bad.returncode == 2 and "--dashboard must be HOST:PORT" in stderr
    assert not (tmp_path / "w2" / "dashboard.token").exists()


def test_missing_token_file_is_a_one_line_error(tmp_path: Path) -> None:
    fed = make_federation(tmp_path / "fed", ["bank", "retailer"])
    missing = str(tmp_path / "no")
    proc = _serve(
        fed, tmp_path / "w", "--dashboard", "127.0.0.1:0", "--dashboard-token-file", missing
    )
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert stderr.strip().splitlines()[-1].startswith("vfl: error: --dashboard-token-file")
