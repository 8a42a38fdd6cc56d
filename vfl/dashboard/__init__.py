"""The party dashboard (issue 9, items 3 and 4): a live, read-only, token-protected web page and
a Prometheus ``/metrics`` endpoint over a party's work directory.

* :class:`DashboardServer` -- embeddable (``start`` / ``stop``, ``port``, ``url``,
  ``login_url``); serves ``/``, ``/api/status`` and ``/metrics``.
* :func:`start_dashboard` / :func:`add_dashboard_arguments` -- the ``--dashboard HOST:PORT
  [--dashboard-token-file F]`` flags of ``vfl serve`` and ``vfl run``.
* :class:`RunStore` / :class:`RunView` / :class:`EventsTail` -- tolerant readers of the run files
  (``runs/JOB_ID/PARTY/status.json``, ``events.jsonl``, ``result.json``).
* :func:`render_run_metrics` -- the Prometheus exposition of a run and the node's peer health.

See ``docs/dashboard.md``.
"""

from vfl.dashboard._exposition import render_run_metrics
from vfl.dashboard._health import PEER_STATES, NodeLike, PeerHealth
from vfl.dashboard._runs import EventsTail, RunRef, RunStore, RunView
from vfl.dashboard._server import MIN_TOKEN_LENGTH, DashboardServer, parse_bind
from vfl.dashboard._start import (
    TOKEN_FILE,
    add_dashboard_arguments,
    read_token_file,
    start_dashboard,
    write_new_token,
)

__all__ = [
    "DashboardServer",
    "start_dashboard",
    "add_dashboard_arguments",
    "read_token_file",
    "write_new_token",
    "TOKEN_FILE",
    "MIN_TOKEN_LENGTH",
    "parse_bind",
    "RunStore",
    "RunRef",
    "RunView",
    "EventsTail",
    "render_run_metrics",
    "PeerHealth",
    "NodeLike",
    "PEER_STATES",
]
