"""The report's run sections: metrics, privacy budget, bytes, participation, leak AUC, phase times.

Each function takes the :class:`RunView` and returns a :class:`Section`; a section without data
says so in a note instead of drawing an empty chart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vfl.report._axes import esc
from vfl.report._charts import RefLine, Series, bar_chart, grid_chart, line_chart
from vfl.report._html import Figure, Section, note, table
from vfl.report._view import RoundRow, RunView, metric_names

__all__ = [
    "metrics_section",
    "privacy_section",
    "bytes_section",
    "participation_section",
    "leak_section",
    "timing_section",
    "byte_unit",
]

# (plot id, title, y label, does this metric belong?) -- first match wins.
_METRIC_GROUPS: tuple[tuple[str, str, str, Callable[[str], bool]], ...] = (
    ("metrics-f1", "F1 score over rounds", "F1", lambda m: "f1" in m),
    (
        "metrics-quality",
        "AUC and accuracy over rounds",
        "AUC / accuracy",
        lambda m: ("auc" in m or "acc" in m or m.endswith("ks")) and not m.startswith("leak_"),
    ),
    (
        "metrics-loss",
        "Loss over rounds",
        "loss / error",
        lambda m: any(k in m for k in ("loss", "rmse", "mse", "mae")),
    ),
)
_PHASE_ORDER = ("psi", "train", "evaluate")
_NOT_PHASES = frozenset({"total", "train_cpu"})


def _x(rows: Sequence[RoundRow]) -> tuple[float, ...]:
    return tuple(float(r.round) for r in rows)


def _distinct_series(rows: Sequence[RoundRow], names: Sequence[str]) -> list[Series]:
    """One series per metric; a copy of an earlier one is dashed and named as such."""
    out: list[Series] = []
    for name in names:
        values = tuple(rows[i].metrics.get(name) for i in range(len(rows)))
        twin = next((s.name for s in out if s.y == values and not s.dashed), None)
        label = name if twin is None else f"{name} (= {twin})"
        out.append(Series(label, _x(rows), values, dashed=twin is not None))
    return out


def metrics_section(view: RunView) -> Section:
    """One line chart per metric family (loss, AUC/accuracy, F1) over the rounds."""
    rows = view.rounds
    names = [n for n in metric_names(rows) if not n.startswith("leak_")]
    groups = []
    used: set[str] = set()
    for plot_id, title, y_label, belongs in _METRIC_GROUPS:
        members = [n for n in names if n not in used and belongs(n.lower())]
        used.update(members)
        groups.append((plot_id, title, y_label, members))
    figures = []
    for plot_id, title, y_label, members in reversed(groups):  # loss, AUC/accuracy, F1
        if not members:
            continue
        series = _distinct_series(rows, members)
        figures.append(
            Figure(
                plot_id,
                line_chart(
                    title=title,
                    plot_id=plot_id,
                    series=series,
                    x_label="round",
                    y_label=y_label,
                ),
            )
        )
    others = [n for n in names if n not in used]
    if others:
        series = [Series(n, _x(rows), tuple(r.metrics.get(n) for r in rows)) for n in others]
        svg = line_chart(
            title="Other metrics over rounds",
            plot_id="metrics-other",
            series=series,
            x_label="round",
            y_label="value",
        )
        figures.append(Figure("metrics-other", svg))
    intro = "" if figures else note("No per-round metrics were recorded for this party.")
    return Section("metrics", "Metrics over rounds", intro=intro, figures=tuple(figures))


def privacy_section(view: RunView) -> Section:
    """Cumulative epsilon per round and the epsilon spent in each round, or "no DP"."""
    rows = [r for r in view.rounds if r.epsilon is not None or r.epsilon_round is not None]
    if not rows:
        if view.epsilon is not None:
            text = f"Differential privacy: epsilon {view.epsilon:.4g} spent in total" + (
                f" (delta {view.delta:.3g})" if view.delta is not None else ""
            )
            return Section("privacy", "Privacy budget", intro=note(text + "; no per-round data."))
        return Section("privacy", "Privacy budget", intro=note("No DP in this run."))
    delta = f", delta {view.delta:.3g}" if view.delta is not None else ""
    cumulative = Series("cumulative epsilon", _x(rows), tuple(r.epsilon for r in rows))
    per_round = []
    previous = 0.0
    for r in rows:
        if r.epsilon_round is not None:
            per_round.append(r.epsilon_round)
        else:  # derive from the cumulative value
            per_round.append(max((r.epsilon or previous) - previous, 0.0))
        previous = r.epsilon if r.epsilon is not None else previous
    figures = (
        Figure(
            "privacy-epsilon",
            line_chart(
                title=f"Privacy budget spent (cumulative{delta})",
                plot_id="privacy-epsilon",
                series=[cumulative],
                x_label="round",
                y_label="epsilon",
            ),
        ),
        Figure(
            "privacy-epsilon-round",
            bar_chart(
                title="Epsilon spent per round",
                plot_id="privacy-epsilon-round",
                categories=[str(r.round) for r in rows],
                series=[("epsilon this round", per_round)],
                x_label="round",
                y_label="epsilon",
            ),
        ),
    )
    return Section("privacy", "Privacy budget", figures=figures)


def byte_unit(largest: float) -> tuple[str, float]:
    """The unit (B, KiB, MiB, GiB) in which ``largest`` bytes reads best, and its size."""
    for unit, size in (("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if largest >= size:
            return unit, size
    return "B", 1.0


def bytes_section(view: RunView) -> Section:
    """Bytes sent and received per round, and per peer over the run (when known)."""
    rows = [r for r in view.rounds if r.bytes_sent is not None or r.bytes_received is not None]
    figures = []
    if rows:
        sent = [r.bytes_sent or 0.0 for r in rows]
        received = [r.bytes_received or 0.0 for r in rows]
        unit, size = byte_unit(max(sent + received))
        series = [("sent", [v / size for v in sent])]
        if any(r.bytes_received is not None for r in rows):
            series.append(("received", [v / size for v in received]))
        figures.append(
            Figure(
                "bytes-round",
                bar_chart(
                    title=f"Bytes per round ({view.party})",
                    plot_id="bytes-round",
                    categories=[str(r.round) for r in rows],
                    series=series,
                    x_label="round",
                    y_label=unit,
                ),
            )
        )
    peers = sorted(view.peers)
    if peers:
        sent = [float(view.peers[p].get("bytes_sent") or 0) for p in peers]
        received = [float(view.peers[p].get("bytes_received") or 0) for p in peers]
        unit, size = byte_unit(max(sent + received + [1.0]))
        figures.append(
            Figure(
                "bytes-peer",
                bar_chart(
                    title="Bytes per peer (whole run)",
                    plot_id="bytes-peer",
                    categories=peers,
                    series=[
                        ("sent to", [v / size for v in sent]),
                        ("received from", [v / size for v in received]),
                    ],
                    x_label="peer",
                    y_label=unit,
                ),
            )
        )
    intro = "" if figures else note("No per-round or per-peer byte counts were recorded.")
    return Section("bytes", "Bytes on the wire", intro=intro, figures=tuple(figures))


def participation_section(view: RunView) -> Section:
    """Participants vs dropped per round, and which party took part in which round."""
    rows = [r for r in view.rounds if r.participants or r.dropped]
    if not rows:
        return Section(
            "participation",
            "Participation",
            intro=note("Participation per round was not recorded for this run."),
        )
    categories = [str(r.round) for r in rows]
    figures = [
        Figure(
            "participation",
            bar_chart(
                title="Participation per round",
                plot_id="participation",
                categories=categories,
                series=[
                    ("participants", [float(len(r.participants)) for r in rows]),
                    ("dropped", [float(len(r.dropped)) for r in rows]),
                ],
                x_label="round",
                y_label="parties",
                stacked=True,
                colours=["#009E73", "#D55E00"],
            ),
        )
    ]
    parties: list[str] = list(view.parties)
    for r in rows:
        parties += [p for p in (*r.participants, *r.dropped) if p not in parties]
    if len(parties) <= 40:
        cells: dict[tuple[str, str], str] = {}
        for r in rows:
            for p in r.participants:
                cells[(p, str(r.round))] = "took part"
            for p in r.dropped:
                cells[(p, str(r.round))] = "dropped"
        figures.append(
            Figure(
                "participation-parties",
                grid_chart(
                    title="Parties in each round",
                    plot_id="participation-parties",
                    rows=parties,
                    columns=categories,
                    cells=cells,
                    states=[
                        ("took part", "took part", "#009E73"),
                        ("dropped", "dropped", "#D55E00"),
                    ],
                    x_label="round",
                    y_label="party",
                ),
            )
        )
    return Section("participation", "Participation", figures=tuple(figures))


def leak_section(view: RunView) -> Section:
    """Label-leakage attack AUCs (norm and direction) against the 0.5 chance line."""
    privacy = view.privacy
    attacks = [(k, privacy.get(f"leak_auc_{k}")) for k in ("norm", "direction")]
    measured = [(k, float(v)) for k, v in attacks if isinstance(v, int | float)]
    per_round = [r for r in view.rounds if any(k.startswith("leak_auc_") for k in r.metrics)]
    if not measured and not per_round:
        return Section(
            "leak", "Label leakage", intro=note("Leak AUC was not measured in this run.")
        )
    defence = str(privacy.get("defence", "unknown"))
    state = {"none": "undefended", "unknown": "defence not recorded"}.get(
        defence, f"defended ({defence})"
    )
    if defence not in ("none", "unknown") and isinstance(
        privacy.get("noise_multiplier"), int | float
    ):
        state += f", noise multiplier {privacy['noise_multiplier']:g}"
    refs = [RefLine(0.5, "chance (0.5)")]
    bound = privacy.get("leak_auc_bound")
    if defence != "none" and isinstance(bound, int | float):
        refs.append(RefLine(float(bound), f"defence bound ({bound:.3g})", "#CC79A7"))
    figures = []
    if measured:
        figures.append(
            Figure(
                "leak-auc",
                bar_chart(
                    title="Label-leak attack AUC (this run)",
                    plot_id="leak-auc",
                    categories=[f"{k} attack" for k, _v in measured],
                    series=[(state.split(",")[0], [v for _k, v in measured])],
                    x_label="attack on the returned gradients",
                    y_label="attack AUC",
                    refs=refs,
                    colours=["#D55E00" if defence == "none" else "#0072B2"],
                ),
            )
        )
    if per_round:
        names = [n for n in metric_names(per_round) if n.startswith("leak_auc_")]
        figures.append(
            Figure(
                "leak-auc-rounds",
                line_chart(
                    title="Label-leak attack AUC per round",
                    plot_id="leak-auc-rounds",
                    series=[
                        Series(n, _x(per_round), tuple(r.metrics.get(n) for r in per_round))
                        for n in names
                    ],
                    x_label="round",
                    y_label="attack AUC",
                    refs=refs,
                ),
            )
        )
    intro = (
        f"<p>This run is <b>{esc(state)}</b>. The attacks guess each row's label from the "
        "gradients the label party returns (by their norm, and by their direction); an AUC near "
        "the 0.5 chance line means they do no better than a coin.</p>"
    )
    rows = [(k, round(v, 4), 0.5) for k, v in measured]
    outro = table(["attack", "AUC", "chance"], rows) if rows else ""
    return Section("leak", "Label leakage", intro=intro, figures=tuple(figures), outro=outro)


def timing_section(view: RunView) -> Section:
    """Seconds per phase (psi, train, evaluate, ...) as bars; total and CPU time in the table."""
    phases = [p for p in _PHASE_ORDER if p in view.timing]
    phases += [p for p in view.timing if p not in phases and p not in _NOT_PHASES]
    if not phases:
        return Section("timing", "Time per phase", intro=note("No phase timings were recorded."))
    svg = bar_chart(
        title="Time per phase",
        plot_id="phase-time",
        categories=phases,
        series=[("seconds", [view.timing[p] for p in phases])],
        x_label="phase",
        y_label="seconds",
    )
    extra = [(k, round(view.timing[k], 3)) for k in sorted(_NOT_PHASES) if k in view.timing]
    outro = table(["", "seconds"], extra) if extra else ""
    return Section("timing", "Time per phase", figures=(Figure("phase-time", svg),), outro=outro)
