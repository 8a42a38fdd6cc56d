"""The dashboard server over a synthetic work directory: auth, methods, /api/status, /metrics.

The run files follow the work-directory contract (runs/JOB_ID/PARTY/status.json, events.jsonl,
result.json); :class:`RunWriter` writes them the way ``vfl run`` does (status replaced
atomically, events appended a line at a time), so the tests can also leave a line cut mid-write.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import stat
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from vfl.dashboard import (
    DashboardServer,
    EventsTail,
    RunStore,
    parse_bind,
    render_run_metrics,
    start_dashboard,
)
from vfl.errors import ConfigError

TOKEN = "test-token-0123456789abcdef"
PEERS = ("retailer", "insurer")


class RunWriter:
    """Writes one party's run files as the work-directory contract describes."""

    def __init__(
        self, work_dir: Path, *, job_id: str = "credit-1", party: str = "bank", total: int = 10
    ) -> None:
        self.dir = work_dir / "runs" / job_id / party
        self.dir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self.status: dict[str, Any] = {
            "job_id": job_id,
            "party": party,
            "type": "hetero_lr",
            "label_party": party,
            "parties": [party, *PEERS],
            "phase": "starting",
            "round": 0,
            "total_rounds": total,
            "started": now,
            "updated": now,
            "metrics": {},
            "bytes_sent": 0,
            "bytes_received": 0,
            "peers": {p: {"last_seen": None, "bytes_sent": 0, "bytes_received": 0} for p in PEERS},
            "epsilon": None,
            "delta": None,
            "error": None,
        }
        self.write_status()

    def write_status(self, **changes: Any) -> None:
        self.status.update(changes, updated=time.time())
        partial = self.dir / "status.json.partial"
        partial.write_text(json.dumps(self.status))
        os.replace(partial, self.dir / "status.json")

    def event(self, kind: str, **fields: Any) -> None:
        with (self.dir / "events.jsonl").open("a") as handle:
            handle.write(json.dumps({"t": time.time(), "kind": kind, **fields}) + "\n")

    def phase(self, phase: str) -> None:
        self.event("phase", phase=phase, seconds=None)
        self.write_status(phase=phase)

    def round(self, n: int, *, loss: float, auc: float, dropped: tuple[str, ...] = ()) -> None:
        metrics = {"loss": loss, "val_auc": auc, "f1": round(auc - 0.1, 4)}
        sent, received = 1000 * n, 2000 * n
        self.event(
            "round",
            round=n,
            metrics=metrics,
            seconds=0.5 + n / 10,
            bytes_sent=sent,
            bytes_received=received,
            participants=[p for p in PEERS if p not in dropped],
            dropped=list(dropped),
            epsilon=0.25 * n,
            epsilon_round=0.25,
            crypto_seconds=0.2,
        )
        peers = self.status["peers"]
        present = [p for p in PEERS if p not in dropped]
        for p in present:
            peers[p]["last_seen"] = time.time()
            peers[p]["bytes_sent"] += sent // len(present)
            peers[p]["bytes_received"] += received // len(present)
        self.write_status(
            round=n,
            metrics=metrics,
            bytes_sent=self.status["bytes_sent"] + sent,
            bytes_received=self.status["bytes_received"] + received,
            epsilon=0.25 * n,
            delta=1e-5,
        )

    def cut_line(self) -> None:
        """Half of an event line, as a writer caught mid-write leaves it."""
        with (self.dir / "events.jsonl").open("a") as handle:
            handle.write('{"t": 1.0, "kind": "round", "round": 99, "metr')


def training_run(work_dir: Path, rounds: int = 3, **kwargs: Any) -> RunWriter:
    run = RunWriter(work_dir, **kwargs)
    run.phase("psi")
    run.event("psi", intersection_size=812, input_rows=1000)
    run.phase("train")
    for n in range(1, rounds + 1):
        run.round(n, loss=round(0.7 - 0.05 * n, 4), auc=round(0.6 + 0.03 * n, 4))
    return run


def fetch(
    server: DashboardServer,
    path: str,
    *,
    method: str = "GET",
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request to ``server``; the token as a Bearer header unless ``token`` is None."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=b"{}" if method in ("POST", "PUT") else None, headers=sent)
        reply = conn.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        conn.close()


def status_of(server: DashboardServer, path: str = "/api/status") -> dict[str, Any]:
    code, headers, body = fetch(server, path)
    assert code == 200, body
    assert headers["Content-Type"] == "application/json"
    value: dict[str, Any] = json.loads(body)
    return value


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DashboardServer]:
    with DashboardServer(tmp_path, token=TOKEN) as running:
        yield running


# -- the Prometheus exposition ---------------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|untyped)$")
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(
    rf"^({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)\}})? "
    r"(-?(?:[0-9]+(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)|NaN|[+-]Inf)$"
)
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Check every line against the text format 0.0.4 and return the samples.

    Each family has exactly one HELP and one TYPE line, before its samples, and its samples are
    contiguous; no (name, labels) pair repeats.
    """
    assert text.endswith("\n")
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    typed: dict[str, str] = {}
    helped: set[str] = set()
    finished: set[str] = set()
    current = None
    for line in text.splitlines():
        if m := _HELP.match(line):
            assert m.group(1) not in helped, f"second HELP: {line}"
            helped.add(m.group(1))
            continue
        if m := _TYPE.match(line):
            assert m.group(1) not in typed, f"second TYPE: {line}"
            assert m.group(1) in helped, f"TYPE before HELP: {line}"
            typed[m.group(1)] = m.group(2)
            if current is not None:
                finished.add(current)
            current = m.group(1)
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a valid exposition line: {line!r}"
        name = m.group(1)
        assert name == current and name not in finished, f"sample outside its family: {line}"
        labels = frozenset(_LABEL_PAIR.findall(m.group(2) or ""))
        key = (name, labels)
        assert key not in samples, f"duplicate sample: {line}"
        samples[key] = float(m.group(3))
        if typed[name] == "counter":
            assert samples[key] >= 0
    return samples


def sample(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """The sample of ``name`` for the job credit-1 at the bank with these extra labels."""
    base = {"job": "credit-1", "party": "bank"}
    return samples[(name, frozenset({**base, **labels}.items()))]


def test_metrics_is_valid_exposition_with_the_run_values(server: DashboardServer) -> None:
    run = training_run(server.work_dir, rounds=3)
    run.round(4, loss=0.45, auc=0.75, dropped=("insurer",))
    run.event("alert", alert="dropouts", message="round 4: 50% of the parties dropped out")
    run.event("alert", alert="plateau", message="loss has not improved in 5 rounds")
    run.event("alert", alert="plateau", message="loss has not improved in 5 rounds")
    code, headers, body = fetch(server, "/metrics")
    assert code == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse_exposition(body.decode())
    assert sample(samples, "vfl_round") == 4
    assert sample(samples, "vfl_rounds_total") == 4
    assert sample(samples, "vfl_job_rounds_planned") == 10
    assert sample(samples, "vfl_job_phase", phase="train") == 1
    assert sample(samples, "vfl_job_phase", phase="done") == 0
    assert sample(samples, "vfl_job_finished") == 0
    assert sample(samples, "vfl_model_metric", metric="loss") == 0.45
    assert sample(samples, "vfl_model_metric", metric="val_auc") == 0.75
    assert sample(samples, "vfl_model_metric", metric="f1") == 0.65
    assert sample(samples, "vfl_round_seconds") == pytest.approx(0.9)
    assert sample(samples, "vfl_round_seconds_total") == pytest.approx(0.6 + 0.7 + 0.8 + 0.9)
    assert sample(samples, "vfl_round_bytes_sent") == 4000
    assert sample(samples, "vfl_round_bytes_received") == 8000
    assert sample(samples, "vfl_job_bytes_sent_total") == 10_000
    assert sample(samples, "vfl_bytes_sent_total", peer="retailer") == 500 + 1000 + 1500 + 4000
    assert sample(samples, "vfl_bytes_sent_total", peer="insurer") == 500 + 1000 + 1500
    assert sample(samples, "vfl_bytes_received_total", peer="retailer") == 14_000
    assert sample(samples, "vfl_dropouts_total") == 1
    assert sample(samples, "vfl_dropout_ratio") == 0.5
    assert sample(samples, "vfl_privacy_epsilon") == 1.0
    assert sample(samples, "vfl_privacy_delta") == 1e-5
    assert sample(samples, "vfl_alerts_total", kind="plateau") == 2
    assert sample(samples, "vfl_alerts_total", kind="dropouts") == 1
    assert sample(samples, "vfl_psi_intersection_size") == 812
    assert samples[("vfl_dashboard_run_present", frozenset())] == 1
    seen = sample(samples, "vfl_peer_last_seen_timestamp_seconds", peer="retailer")
    assert seen == run.status["peers"]["retailer"]["last_seen"]
    assert not any(name == "vfl_peer_latency_seconds" for name, _ in samples)  # in memory: none
    peers = run.status["peers"]
    peers["retailer"]["latency_ms"] = 12.5  # a gRPC run: the heartbeat round-trip time
    run.write_status(peers=peers)
    samples = parse_exposition(fetch(server, "/metrics")[2].decode())
    assert sample(samples, "vfl_peer_latency_seconds", peer="retailer") == pytest.approx(0.0125)
    # HEAD: the same headers, no body.
    code, headers, body = fetch(server, "/metrics", method="HEAD")
    assert code == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_metrics_escapes_labels_and_follows_the_job_to_the_end(server: DashboardServer) -> None:
    run = training_run(server.work_dir, rounds=2, job_id='odd "job"\\x')
    run.write_status(phase="done", metrics={"test_auc": 0.81, "test_logloss": float("nan")})
    (run.dir / "result.json").write_text(json.dumps({"job_id": run.status["job_id"]}))
    text = fetch(server, "/metrics")[2].decode()
    samples = parse_exposition(text)
    assert 'job="odd \\"job\\"\\\\x"' in text
    done = [
        v
        for (n, labels), v in samples.items()
        if n == "vfl_job_phase" and ("phase", "done") in labels
    ]
    assert done == [1]
    finished = [v for (n, _), v in samples.items() if n == "vfl_job_finished"]
    assert finished == [1]
    assert "NaN" in text  # a NaN metric is a valid sample value in the text format
    # ... while /api/status turns it into null, which JavaScript's JSON.parse accepts.
    assert status_of(server)["metrics"]["test_logloss"] is None


def test_metrics_without_any_run(server: DashboardServer) -> None:
    samples = parse_exposition(fetch(server, "/metrics")[2].decode())
    assert samples == {("vfl_dashboard_run_present", frozenset()): 0}
    status = status_of(server)
    assert status["run"] is None and status["rounds"] == [] and status["runs"] == []


# -- authentication and methods --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/status", "/metrics", "/nowhere", "/?job=x"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_every_route_needs_the_token(server: DashboardServer, path: str, method: str) -> None:
    training_run(server.work_dir)
    for token in (None, "", "wrong-token-0123456789abcdef", TOKEN[:-1], TOKEN + "x"):
        code, headers, body = fetch(server, path, method=method, token=token)
        assert code == 401, (token, code)
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert b"credit-1" not in body and b"vfl_" not in body
    for scheme in ("Basic", "Token", "bearer"):
        code = fetch(
            server, path, method=method, token=None, headers={"Authorization": f"{scheme} {TOKEN}"}
        )[0]
        assert (code != 401) == (scheme == "bearer"), scheme  # the scheme is case-insensitive
    assert fetch(server, path, method=method)[0] in (200, 404)


def test_query_token_only_on_the_page_and_it_sets_a_strict_cookie(server: DashboardServer) -> None:
    training_run(server.work_dir)
    assert fetch(server, f"/api/status?token={TOKEN}", token=None)[0] == 401
    assert fetch(server, f"/metrics?token={TOKEN}", token=None)[0] == 401
    assert fetch(server, "/?token=nope-nope-nope-nope-nope", token=None)[0] == 401
    code, headers, body = fetch(server, f"/?token={TOKEN}&job=credit-1", token=None)
    assert code == 303 and headers["Location"] == "/?job=credit-1"
    cookie = headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0] for part in cookie.split(";")}
    assert {"HttpOnly", "SameSite", "Path"} <= attributes and "SameSite=Strict" in cookie
    pair = cookie.split(";")[0]
    assert pair == f"{server.cookie_name}={TOKEN}"
    for path in ("/", "/api/status", "/metrics"):
        assert fetch(server, path, token=None, headers={"Cookie": pair})[0] == 200, path
    other = f"{server.cookie_name}=wrong-token-0123456789"
    assert fetch(server, "/api/status", token=None, headers={"Cookie": other})[0] == 401
    assert fetch(server, "/api/status", token=None, headers={"Cookie": 'x="\\'})[0] == 401


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("token", [TOKEN, None])
def test_the_dashboard_is_read_only(
    server: DashboardServer, method: str, token: str | None
) -> None:
    training_run(server.work_dir)
    before = sorted((p.name, p.read_bytes()) for p in server.work_dir.rglob("*") if p.is_file())
    for path in ("/", "/api/status", "/metrics"):
        code, headers, _ = fetch(server, path, method=method, token=token)
        assert code == 405 and headers["Allow"] == "GET, HEAD"
    after = sorted((p.name, p.read_bytes()) for p in server.work_dir.rglob("*") if p.is_file())
    assert before == after


def test_security_headers_and_a_self_contained_page(server: DashboardServer) -> None:
    import base64
    import hashlib

    code, headers, page = fetch(server, "/")
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    text = page.decode()
    for tag in ("script", "style"):
        (inline,) = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.S)
        digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp, tag
    assert not re.search(r"(src|href)=\"?(https?:)?//", text)  # nothing loaded from elsewhere
    assert "@import" not in text and "url(" not in text
    assert "innerHTML" not in text and "eval(" not in text
    assert "const POLL_MS = 2000;" in text  # polls /api/status every 2 s
    for path in ("/", "/api/status", "/metrics"):
        headers = fetch(server, path)[1]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Server"].startswith("vfl-dashboard") and "Python" not in headers["Server"]


def test_token_is_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="vfl.dashboard")
    with DashboardServer(tmp_path, token=TOKEN) as running:
        fetch(running, f"/?token={TOKEN}", token=None)
        fetch(running, f"/metrics?token={TOKEN}", token=None)
    assert caplog.records and all(TOKEN not in r.getMessage() for r in caplog.records)


# -- /api/status ----------------------------------------------------------------------------


def test_status_of_a_run_in_progress_skips_a_cut_last_line(server: DashboardServer) -> None:
    run = training_run(server.work_dir, rounds=3)
    run.cut_line()
    status = status_of(server)
    assert status["run"]["job_id"] == "credit-1" and status["run"]["finished"] is False
    assert status["run"]["phase"] == "train" and status["status"]["round"] == 3
    assert [r["round"] for r in status["rounds"]] == [1, 2, 3]
    assert status["rounds"][2]["metrics"] == {"loss": 0.55, "val_auc": 0.69, "f1": 0.59}
    assert status["psi"]["intersection_size"] == 812
    assert [p["phase"] for p in status["phases"]] == ["psi", "train"]
    assert status["metrics"] == {"loss": 0.55, "val_auc": 0.69, "f1": 0.59}
    # The writer finishes the line: the next poll has it, and what follows.
    with (run.dir / "events.jsonl").open("a") as handle:
        handle.write('ics": {"loss": 0.1}}\n')
    run.round(4, loss=0.4, auc=0.8)
    status = status_of(server)
    assert [r["round"] for r in status["rounds"]] == [1, 2, 3, 99, 4]
    assert status["rounds"][-1]["metrics"]["val_auc"] == 0.8


def test_status_picks_the_latest_run_or_the_one_asked_for(server: DashboardServer) -> None:
    old = training_run(server.work_dir, rounds=2, job_id="old-job")
    os.utime(old.dir / "status.json", (1_000_000, 1_000_000))
    os.utime(old.dir / "events.jsonl", (1_000_000, 1_000_000))
    training_run(server.work_dir, rounds=3, job_id="new-job")
    status = status_of(server)
    assert status["run"]["job_id"] == "new-job"
    assert [r["job_id"] for r in status["runs"]] == ["new-job", "old-job"]
    older = status_of(server, "/api/status?job=old-job")
    assert older["run"]["job_id"] == "old-job" and len(older["rounds"]) == 2
    for job in ("missing", "../new-job", "..", "new-job/bank"):
        code, _, body = fetch(server, f"/api/status?job={job}")
        assert code == 404 and json.loads(body)["error"], job
    assert fetch(server, "/api/status?job=old-job&party=retailer")[0] == 404
    assert parse_exposition(fetch(server, "/metrics?job=old-job")[2].decode())


def test_status_of_a_failed_job_and_the_node_party_filter(tmp_path: Path) -> None:
    run = training_run(tmp_path, rounds=1)
    run.phase("failed")
    run.write_status(error="retailer is down: 3 heartbeats failed")
    training_run(tmp_path, rounds=1, party="retailer")
    with DashboardServer(tmp_path, token=TOKEN, party="bank") as running:
        status = status_of(running)
        assert status["run"]["party"] == "bank" and status["run"]["phase"] == "failed"
        assert status["status"]["error"].startswith("retailer is down")
        assert [r["party"] for r in status["runs"]] == ["bank"]
        samples = parse_exposition(fetch(running, "/metrics")[2].decode())
        assert sample(samples, "vfl_job_phase", phase="failed") == 1


def test_events_tail_reads_increments_and_survives_replacement(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventsTail(path)
    assert tail.read() == ()
    path.write_text('{"kind": "a"}\nnot json\n[1, 2]\n{"kind": "b"}\n{"kind"')
    assert [e["kind"] for e in tail.read()] == ["a", "b"]
    with path.open("a") as handle:
        handle.write(': "c"}\n')
    assert [e["kind"] for e in tail.read()] == ["a", "b", "c"]
    replacement = tmp_path / "new.jsonl"
    replacement.write_text('{"kind": "z"}\n')
    os.replace(replacement, path)
    assert [e["kind"] for e in tail.read()] == ["z"]
    # Rewritten in place (same inode, now longer): a rerun's file, read from its start.
    path.write_text('{"kind": "rerun-1", "t": 2.0}\n{"kind": "rerun-2", "t": 2.1}\n')
    assert [e["kind"] for e in tail.read()] == ["rerun-1", "rerun-2"]
    path.unlink()
    assert tail.read() == ()
    capped = EventsTail(path, max_events=2)
    path.write_text("".join(f'{{"kind": "{k}"}}\n' for k in "pqr"))
    assert [e["kind"] for e in capped.read()] == ["q", "r"]


def test_run_store_ignores_empty_and_stray_entries(tmp_path: Path) -> None:
    (tmp_path / "runs" / "job" / "bank").mkdir(parents=True)
    (tmp_path / "runs" / "stray.txt").write_text("x")
    store = RunStore(tmp_path)
    assert store.runs() == [] and store.find() is None
    assert RunStore(tmp_path / "absent").runs() == []
    assert render_run_metrics(None, party="bank", health={}).count("\n") == 3


# -- starting it -----------------------------------------------------------------------------


def test_start_dashboard_writes_a_private_token(tmp_path: Path) -> None:
    work = tmp_path / "work"
    running, path = start_dashboard(bind="127.0.0.1:0", work_dir=work)
    try:
        assert path == work / "dashboard.token"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert len(token) >= 40 and token in running.login_url
        assert running.url == f"http://127.0.0.1:{running.port}/"
        assert fetch(running, "/metrics", token=token)[0] == 200
        assert fetch(running, "/metrics")[0] == 401
    finally:
        running.stop()
    again, _ = start_dashboard(bind="127.0.0.1:0", work_dir=work)
    again.stop()
    assert path.read_text().strip() != token  # a new token per start
    given = tmp_path / "given.token"
    given.write_text(f"  {TOKEN}\n")
    running, used = start_dashboard(bind="127.0.0.1:0", work_dir=work, token_file=given)
    try:
        assert used == given and fetch(running, "/metrics")[0] == 200
    finally:
        running.stop()


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    for bind in ("8050", "host:", ":8050", "h:99999", "h:x"):
        with pytest.raises(ConfigError, match="HOST:PORT"):
            start_dashboard(bind=bind, work_dir=tmp_path / "w")
    assert not (tmp_path / "w").exists()
    assert parse_bind("[::1]:80") == ("::1", 80)
    with pytest.raises(ConfigError, match="at least 16"):
        DashboardServer(tmp_path, token="short")
    with pytest.raises(ConfigError, match="at least 16"):
        DashboardServer(tmp_path, token="has space in the middle of it")
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        start_dashboard(bind="127.0.0.1:0", work_dir=tmp_path, token_file=empty)
    with pytest.raises(ConfigError, match="cannot read"):
        start_dashboard(bind="127.0.0.1:0", work_dir=tmp_path, token_file=tmp_path / "no")
    with DashboardServer(tmp_path, token=TOKEN) as running:
        with pytest.raises(ConfigError, match="cannot listen"):
            DashboardServer(tmp_path, token=TOKEN, bind=f"127.0.0.1:{running.port}").start()


def test_binding_beyond_loopback_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with DashboardServer(tmp_path, token=TOKEN, bind="0.0.0.0:0") as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert fetch(running, "/metrics")[0] == 200
    assert any("reachable from other machines" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with DashboardServer(tmp_path, token=TOKEN, bind="127.0.0.1:0"):
        pass
    assert not any("reachable" in r.getMessage() for r in caplog.records)
