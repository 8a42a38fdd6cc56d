"""The party dashboard: a read-only, token-protected HTTP server over a work directory.

Routes (GET and HEAD only; any other method is ``405``):

* ``/``            -- the self-contained page (:mod:`vfl.dashboard._page`);
* ``/api/status``  -- the JSON the page draws (``?job=ID`` / ``?party=NAME`` pick a run, default
  the most recently updated one);
* ``/metrics``     -- the Prometheus text exposition (:mod:`vfl.dashboard._exposition`).

Every route needs the token: ``Authorization: Bearer TOKEN``, or the cookie that ``/?token=TOKEN``
sets (HttpOnly, SameSite=Strict) before redirecting to the same page without the token in its
address. Tokens are compared in constant time (SHA-256 digests through ``hmac.compare_digest``)
and never written to the log. Plain HTTP: keep the default loopback bind, or put TLS in front.
"""

from __future__ import annotations

import hashlib
import hmac
import http.cookies
import ipaddress
import json
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, quote, urlsplit

from vfl.dashboard._exposition import render_run_metrics
from vfl.dashboard._health import NodeLike, PeerHealth
from vfl.dashboard._page import API_CSP, PAGE_CSP, PAGE_HTML
from vfl.dashboard._runs import RunStore, RunView
from vfl.errors import ConfigError
from vfl.governance import PROMETHEUS_CONTENT_TYPE

__all__ = ["DashboardServer", "parse_bind", "MIN_TOKEN_LENGTH"]

_log = logging.getLogger("vfl.dashboard")
MIN_TOKEN_LENGTH = 16
_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]+$")
_RUNS_LISTED = 50


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> ``(host, port)``; port 0 picks a free one."""
    host, sep, port_text = bind.rpartition(":")
    host = host.strip("[]") if host.startswith("[") else host
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"--dashboard must be HOST:PORT, got {bind!r}")
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _finite(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities (which JavaScript's JSON.parse rejects) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).digest()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: DashboardServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "vfl-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a client may take to send its request

    # -- methods -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request body, if any, is not read
        self._send(
            405,
            b"405 Method Not Allowed: the dashboard is read-only (GET and HEAD only)\n",
            "text/plain; charset=utf-8",
            extra={"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    # -- plumbing ----------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        message = format % args
        _log.debug("%s %s", self.address_string(), self.server.app.redact(message))

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        *,
        head: bool = False,
        csp: str = API_CSP,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(len(body)),
            "Cache-Control": "no-store",
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            **(extra or {}),
        }
        for name, value in headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, code: int, value: Any, *, head: bool) -> None:
        body = json.dumps(_finite(value), separators=(",", ":"), allow_nan=False).encode()
        self._send(code, body, "application/json", head=head)

    def _authorised(self, query_token: str | None) -> bool:
        app = self.server.app
        scheme, _, credential = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and app.check_token(credential.strip()):
            return True
        cookies: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        try:
            cookies.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            cookies = http.cookies.SimpleCookie()
        morsel = cookies.get(app.cookie_name)
        if morsel is not None and app.check_token(morsel.value):
            return True
        return query_token is not None and app.check_token(query_token)

    def _dispatch(self, *, head: bool) -> None:
        app = self.server.app
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        # ?token= is accepted on the page only (the first load), then swapped for the cookie.
        query_token = query.get("token") if path == "/" else None
        if not self._authorised(query_token):
            self.close_connection = True
            self._send(
                401,
                b"401 Unauthorized: this dashboard needs its token "
                b"(Authorization: Bearer TOKEN, or open /?token=TOKEN)\n",
                "text/plain; charset=utf-8",
                head=head,
                extra={"WWW-Authenticate": 'Bearer realm="vfl-dashboard"'},
            )
            return
        try:
            if path == "/" and "token" in query:
                job = query.get("job")
                location = "/" + (f"?job={quote(job, safe='')}" if job else "")
                self._send(
                    303,
                    b"",
                    "text/plain; charset=utf-8",
                    head=head,
                    extra={"Location": location, "Set-Cookie": app.cookie_header()},
                )
            elif path == "/":
                self._send(200, PAGE_HTML, "text/html; charset=utf-8", head=head, csp=PAGE_CSP)
            elif path == "/api/status":
                status = app.status(job=query.get("job"), party=query.get("party"))
                if status is None:
                    self._json(404, {"error": "no run of that job in this work dir"}, head=head)
                else:
                    self._json(200, status, head=head)
            elif path == "/metrics":
                text = app.metrics(job=query.get("job"), party=query.get("party"))
                self._send(200, text.encode(), PROMETHEUS_CONTENT_TYPE, head=head)
            else:
                self._send(404, b"404 Not Found\n", "text/plain; charset=utf-8", head=head)
        except Exception:
            _log.exception("dashboard: %s failed", path)
            self.close_connection = True
            self._send(500, b"500 Internal Server Error\n", "text/plain; charset=utf-8", head=head)


class DashboardServer:
    """Serves one party's work directory read-only over HTTP (module docstring).

    ``bind`` is ``HOST:PORT`` (default: loopback, a free port); binding anywhere else is logged
    as a warning. ``node`` (a running :class:`protocols.grpc.PartyNode`) adds the peers' health.
    ``party`` restricts the view to that party's runs (default: the node's party, if any).
    """

    def __init__(
        self,
        work_dir: Path | str,
        *,
        bind: str = "127.0.0.1:0",
        token: str,
        node: NodeLike | None = None,
        party: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.match(token):
            raise ConfigError(
                f"dashboard token must be at least {MIN_TOKEN_LENGTH} characters of "
                "A-Z a-z 0-9 . _ ~ + / = -"
            )
        self.host, self._requested_port = parse_bind(bind)
        self.work_dir = Path(work_dir)
        self.store = RunStore(self.work_dir)
        self.party = party if party is not None else (node.party if node is not None else None)
        self._token = token
        self._token_digest = _digest(token)
        self._now = now
        self._health = PeerHealth(node, now=now) if node is not None else None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        if self._httpd is not None:
            raise ConfigError("the dashboard is already started")
        try:
            httpd = _HTTPServer((self.host, self._requested_port), self)
        except OSError as exc:
            raise ConfigError(
                f"--dashboard: cannot listen on {self.host}:{self._requested_port}: {exc}"
            ) from exc
        self._httpd = httpd
        if self._health is not None:
            self._health.start()
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="vfl-dashboard"
        )
        self._thread.daemon = True
        self._thread.start()
        if not _is_loopback(self.host):
            _log.warning(
                "dashboard listens on %s, reachable from other machines over plain HTTP: "
                "anyone on the path can read the token; prefer 127.0.0.1 or a TLS proxy",
                self.host,
            )
        _log.info("dashboard for %s on %s", self.work_dir, self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._health is not None:
            self._health.stop()

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise ConfigError("the dashboard is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The page's address (without the token)."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        """The page's address with ``?token=`` (sets the cookie on first load)."""
        return f"{self.url}?token={quote(self._token, safe='')}"

    # -- auth --------------------------------------------------------------------------------
    @property
    def cookie_name(self) -> str:
        # Cookies are shared by every port of a host: one name per port keeps two dashboards apart.
        return f"vfl_dashboard_{self.port}"

    def cookie_header(self) -> str:
        return f"{self.cookie_name}={self._token}; Path=/; HttpOnly; SameSite=Strict"

    def check_token(self, candidate: str) -> bool:
        """Constant-time comparison of ``candidate`` with the token."""
        return hmac.compare_digest(_digest(candidate), self._token_digest)

    def redact(self, text: str) -> str:
        return text.replace(quote(self._token, safe=""), "<token>").replace(self._token, "<token>")

    # -- views -------------------------------------------------------------------------------
    def _view(self, *, job: str | None, party: str | None) -> RunView | None:
        ref = self.store.find(job=job, party=party if party is not None else self.party)
        return self.store.view(ref) if ref is not None else None

    def health(self) -> dict[str, dict[str, Any]]:
        """The node's peers' health (empty without a node)."""
        return self._health.snapshot() if self._health is not None else {}

    def status(self, *, job: str | None = None, party: str | None = None) -> dict[str, Any] | None:
        """The ``/api/status`` object; ``None`` when ``job`` is given but has no run here."""
        view = self._view(job=job, party=party)
        if view is None and job is not None:
            return None
        runs = [
            r.to_json() for r in self.store.runs() if self.party is None or r.party == self.party
        ]
        base: dict[str, Any] = {
            "server_time": self._now(),
            "party": self.party,
            "health": self.health(),
            "runs": runs[:_RUNS_LISTED],
        }
        if view is None:
            empty: dict[str, Any] = {"run": None, "status": None, "metrics": {}, "psi": None}
            empty.update({k: [] for k in ("rounds", "alerts", "phases", "models", "privacy")})
            return {**base, **empty}
        return {**base, **view.to_json()}

    def metrics(self, *, job: str | None = None, party: str | None = None) -> str:
        """The ``/metrics`` exposition."""
        view = self._view(job=job, party=party)
        return render_run_metrics(view, party=self.party, health=self.health())
