"""Prometheus text exposition (format 0.0.4) of a :class:`Monitor`'s state.

Each metric family is ``# HELP`` / ``# TYPE`` lines followed by samples
``name{label="value",...} number``; label values escape backslash, double quote and newline, help
texts escape backslash and newline (https://prometheus.io/docs/instrumenting/exposition_formats/).
:class:`ExpositionWriter` is the one place that writes this format; :func:`render_prometheus`
and the party dashboard's ``/metrics`` (:mod:`vfl.dashboard`) both use it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from vfl.governance._errors import GovernanceError
from vfl.governance._monitor import Monitor, dropout_rate

__all__ = ["render_prometheus", "CONTENT_TYPE", "ExpositionWriter"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_KINDS = frozenset({"counter", "gauge", "untyped"})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class ExpositionWriter:
    """Writes metric families in the Prometheus text format; ``base`` labels go on every sample.

    Each family is written once (``# HELP`` and ``# TYPE`` then its samples); a family name or
    label name outside the format's grammar, or a family written twice, is a
    :class:`~vfl.governance.GovernanceError`.
    """

    def __init__(self, base: Mapping[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.base = dict(base or {})
        self._families: set[str] = set()
        for label in self.base:
            self._check_label(label)

    @staticmethod
    def _check_label(label: str) -> None:
        if not _LABEL_NAME.match(label) or label.startswith("__"):
            raise GovernanceError(f"invalid Prometheus label name {label!r}")

    def family(self, name: str, kind: str, help_text: str) -> None:
        """Start the family ``name`` (``counter``, ``gauge`` or ``untyped``)."""
        if not _METRIC_NAME.match(name):
            raise GovernanceError(f"invalid Prometheus metric name {name!r}")
        if kind not in _KINDS:
            raise GovernanceError(f"unknown Prometheus metric type {kind!r}")
        if name in self._families:
            raise GovernanceError(f"metric family {name} written twice")
        self._families.add(name)
        help_line = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines.append(f"# HELP {name} {help_line}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        """One sample of the current family (``base`` labels merged with ``labels``)."""
        for label in labels:
            self._check_label(label)
        merged = {**self.base, **labels}
        body = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(merged.items()))
        self.lines.append(
            f"{name}{{{body}}} {_number(value)}" if body else f"{name} {_number(value)}"
        )

    def samples(
        self,
        name: str,
        kind: str,
        help_text: str,
        values: Iterable[tuple[float, Mapping[str, str]]],
    ) -> None:
        """A whole family at once; nothing is written when ``values`` is empty."""
        rows = list(values)
        if not rows:
            return
        self.family(name, kind, help_text)
        for value, labels in rows:
            self.sample(name, value, **labels)

    def text(self) -> str:
        """The exposition (ends with a newline)."""
        return "\n".join(self.lines) + "\n"


def render_prometheus(monitor: Monitor) -> str:
    """The monitor's metrics in Prometheus text format (ends with a newline)."""
    out = ExpositionWriter({"job": monitor.job_id, "party": monitor.party})
    history = monitor.history
    out.family("vfl_rounds_total", "counter", "Training rounds completed.")
    out.sample("vfl_rounds_total", len(history))
    if history:
        last = history[-1]
        out.family("vfl_round", "gauge", "Number of the latest completed round.")
        out.sample("vfl_round", last.round)
        out.family("vfl_round_seconds", "gauge", "Duration of the latest round in seconds.")
        out.sample("vfl_round_seconds", last.seconds)
        out.family("vfl_model_metric", "gauge", "Model metrics of the latest round.")
        for metric, value in sorted(last.metrics.items()):
            out.sample("vfl_model_metric", value, metric=metric)
        out.family("vfl_dropout_ratio", "gauge", "Share of parties missing in the latest round.")
        out.sample("vfl_dropout_ratio", dropout_rate(last))
        out.family(
            "vfl_encryption_time_ratio", "gauge", "Share of the latest round spent encrypting."
        )
        out.sample(
            "vfl_encryption_time_ratio",
            last.encryption_seconds / last.seconds if last.seconds > 0 else 0.0,
        )
        out.family("vfl_peer_latency_seconds", "gauge", "Latency to each peer, latest round.")
        for peer, seconds in sorted(last.latency_seconds.items()):
            out.sample("vfl_peer_latency_seconds", seconds, peer=peer)
    sent: Counter[str] = Counter()
    for record in history:
        sent.update(record.bytes_sent)
    out.family("vfl_bytes_sent_total", "counter", "Bytes sent to each peer over the job.")
    for peer, count in sorted(sent.items()):
        out.sample("vfl_bytes_sent_total", count, peer=peer)
    alerts = Counter(str(a.kind) for a in monitor.alerts)
    out.family("vfl_alerts_total", "counter", "Alerts raised, by kind.")
    for kind, count in sorted(alerts.items()):
        out.sample("vfl_alerts_total", count, kind=kind)
    return out.text()
