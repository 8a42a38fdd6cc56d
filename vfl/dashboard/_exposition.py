"""``/metrics``: the current run and the node's peer health in the Prometheus text format.

Every run sample carries the labels ``job`` and ``party``; peer-health samples carry ``party``
(this node) and ``peer``. Written with :class:`vfl.governance._prometheus.ExpositionWriter`, the
same writer as :func:`vfl.governance.render_prometheus`. The families are listed in
``docs/dashboard.md``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from vfl.dashboard._runs import RunView
from vfl.governance._prometheus import ExpositionWriter

__all__ = ["render_run_metrics", "PHASES"]

PHASES = ("starting", "psi", "train", "evaluate", "done", "failed")


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _write_run(out: ExpositionWriter, view: RunView) -> None:
    status = view.status or {}
    info = {
        "type": str(status.get("type") or ""),
        "label_party": str(status.get("label_party") or ""),
    }
    out.samples("vfl_job_info", "gauge", "The job this party runs (value 1).", [(1, info)])
    phase = view.phase
    phases = list(PHASES) + ([phase] if phase not in PHASES else [])
    out.samples(
        "vfl_job_phase",
        "gauge",
        "1 for the job's current phase, 0 for the others (failed and done are final).",
        [(1 if p == phase else 0, {"phase": p}) for p in phases],
    )
    out.samples(
        "vfl_job_finished",
        "gauge",
        "1 once the job wrote its final result.",
        [(1 if view.finished else 0, {})],
    )
    for key, name, help_text in (
        ("started", "vfl_job_started_timestamp_seconds", "When the job started (unix time)."),
        ("updated", "vfl_job_updated_timestamp_seconds", "Last status update (unix time)."),
        ("total_rounds", "vfl_job_rounds_planned", "Rounds (epochs) the job plans to run."),
        ("epsilon", "vfl_privacy_epsilon", "Differential-privacy epsilon spent so far."),
        ("delta", "vfl_privacy_delta", "Differential-privacy delta of the guarantee."),
    ):
        value = view.status_number(key)
        out.samples(name, "gauge", help_text, [(value, {})] if value is not None else [])
    rounds = view.rounds
    current = view.status_number("round")
    if current is None and rounds:
        current = float(rounds[-1]["round"])
    out.samples(
        "vfl_round",
        "gauge",
        "Number of the latest completed round (0 before the first).",
        [(current if current is not None else 0.0, {})],
    )
    out.samples(
        "vfl_rounds_total", "counter", "Rounds completed (round events).", [(len(rounds), {})]
    )
    out.samples(
        "vfl_model_metric",
        "gauge",
        "Latest model metrics (loss, val_auc, accuracy, f1, test metrics at the end).",
        [(value, {"metric": name}) for name, value in sorted(view.metrics().items())],
    )
    last = rounds[-1] if rounds else {}
    for key, name, help_text in (
        ("seconds", "vfl_round_seconds", "Duration of the latest round in seconds."),
        ("crypto_seconds", "vfl_round_crypto_seconds", "Seconds of the latest round in crypto."),
        ("bytes_sent", "vfl_round_bytes_sent", "Bytes sent in the latest round."),
        ("bytes_received", "vfl_round_bytes_received", "Bytes received in the latest round."),
    ):
        value = _num(last.get(key))
        out.samples(name, "gauge", help_text, [(value, {})] if value is not None else [])
    seconds = [s for s in (_num(r.get("seconds")) for r in rounds) if s is not None]
    out.samples(
        "vfl_round_seconds_total", "counter", "Seconds spent in rounds.", [(sum(seconds), {})]
    )
    dropped = Counter(
        str(p) for r in rounds if isinstance(r.get("dropped"), list) for p in r["dropped"]
    )
    out.samples(
        "vfl_dropouts_total",
        "counter",
        "Parties missing from rounds, summed over rounds.",
        [(sum(dropped.values()), {})],
    )
    if rounds:
        participants = last.get("participants")
        gone = last.get("dropped")
        n_in = len(participants) if isinstance(participants, list) else 0
        n_out = len(gone) if isinstance(gone, list) else 0
        ratio = n_out / (n_in + n_out) if n_in + n_out else 0.0
        out.samples(
            "vfl_dropout_ratio",
            "gauge",
            "Share of parties missing in the latest round.",
            [(ratio, {})],
        )
    for key, name, help_text in (
        ("bytes_sent", "vfl_job_bytes_sent_total", "Bytes this party sent in the job."),
        ("bytes_received", "vfl_job_bytes_received_total", "Bytes this party received."),
    ):
        value = view.status_number(key)
        out.samples(name, "counter", help_text, [(value, {})] if value is not None else [])
    peers = status.get("peers")
    peers = peers if isinstance(peers, Mapping) else {}
    for key, name, kind, help_text in (
        ("bytes_sent", "vfl_bytes_sent_total", "counter", "Bytes sent to each peer in the job."),
        (
            "bytes_received",
            "vfl_bytes_received_total",
            "counter",
            "Bytes received from each peer in the job.",
        ),
        (
            "last_seen",
            "vfl_peer_last_seen_timestamp_seconds",
            "gauge",
            "When the job last heard from each peer (unix time).",
        ),
    ):
        rows: list[tuple[float, Mapping[str, str]]] = []
        for peer, entry in sorted(peers.items()):
            value = _num(entry.get(key)) if isinstance(entry, Mapping) else None
            if value is not None:
                rows.append((value, {"peer": str(peer)}))
        out.samples(name, kind, help_text, rows)
    latency = [
        (ms / 1000.0, {"peer": str(peer)})
        for peer, entry in sorted(peers.items())
        if isinstance(entry, Mapping) and (ms := _num(entry.get("latency_ms"))) is not None
    ]
    out.samples(
        "vfl_peer_latency_seconds",
        "gauge",
        "Round-trip time of the latest answered heartbeat to each peer (gRPC health check).",
        latency,
    )
    kinds = Counter(str(e.get("alert", "unknown")) for e in view.of_kind("alert"))
    out.samples(
        "vfl_alerts_total",
        "counter",
        "Alerts raised in the job, by kind.",
        [(count, {"kind": kind}) for kind, count in sorted(kinds.items())],
    )
    psi = view.of_kind("psi")
    size = _num(psi[-1].get("intersection_size")) if psi else None
    out.samples(
        "vfl_psi_intersection_size",
        "gauge",
        "Rows in the PSI intersection.",
        [(size, {})] if size is not None else [],
    )


def render_run_metrics(
    view: RunView | None,
    *,
    party: str | None = None,
    health: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The exposition of ``view`` (the current run, if any) and ``health`` (from the node)."""
    out = ExpositionWriter()
    if view is not None:
        run = ExpositionWriter({"job": view.ref.job_id, "party": view.ref.party})
        _write_run(run, view)
        out.lines.extend(run.lines)
    me = party if party is not None else (view.ref.party if view is not None else "")
    node = ExpositionWriter({"party": me})
    peers = sorted((health or {}).items())
    node.samples(
        "vfl_peer_up",
        "gauge",
        "1 when the node's connection to the peer is up, else 0 (down, unreachable, unknown).",
        [(1 if h.get("state") == "up" else 0, {"peer": p}) for p, h in peers],
    )
    node.samples(
        "vfl_peer_down",
        "gauge",
        "1 when the node's heartbeats declared the peer down.",
        [(1 if h.get("state") == "down" else 0, {"peer": p}) for p, h in peers],
    )
    out.lines.extend(node.lines)
    out.samples(
        "vfl_dashboard_run_present",
        "gauge",
        "1 when the work directory holds a run to report on.",
        [(1 if view is not None else 0, {})],
    )
    return out.text()
