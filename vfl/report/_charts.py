"""Small SVG charts drawn as strings: line, vertical bar (grouped or stacked), horizontal bar, grid.

Each function returns one self-contained ``<svg>`` element with a title, axes, ticks, axis labels
and a legend, to be inlined in the HTML report (no scripts, no external resources). Missing values
(``None``) break a line rather than being drawn as zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vfl.report._axes import (
    PALETTE,
    Frame,
    LinearScale,
    esc,
    format_number,
    legend,
    nice_ticks,
    svg_open,
)

__all__ = ["Series", "RefLine", "line_chart", "bar_chart", "hbar_chart", "grid_chart"]


@dataclass(frozen=True)
class Series:
    """One named line: ``y[i]`` at ``x[i]``; ``None`` is a gap."""

    name: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]
    dashed: bool = False

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"series {self.name!r}: {len(self.x)} x values, {len(self.y)} y")


@dataclass(frozen=True)
class RefLine:
    """A horizontal reference line (e.g. the 0.5 chance level of an attack AUC)."""

    value: float
    label: str
    colour: str = "#888888"


def _y_ticks(values: Sequence[float], refs: Sequence[RefLine], *, zero: bool) -> list[float]:
    pool = [v for v in values if math.isfinite(v)] + [r.value for r in refs]
    if zero:
        pool.append(0.0)
    if not pool:
        pool = [0.0, 1.0]
    try:
        return nice_ticks(min(pool), max(pool))
    except ValueError:  # a span beyond float range (absurd data): draw what fits
        return [0.0, 1.0]


def _ref_lines(frame: Frame, scale: LinearScale, refs: Sequence[RefLine]) -> list[str]:
    parts = []
    for ref in refs:
        y = scale(ref.value)
        parts.append(
            f'<line x1="{frame.x0:.1f}" y1="{y:.1f}" x2="{frame.x1:.1f}" y2="{y:.1f}" '
            f'stroke="{ref.colour}" stroke-width="1.5" stroke-dasharray="6 4">'
            f"<title>{esc(ref.label)}</title></line>"
        )
    return parts


def _thin(count: int, room: float, *, per_label: float = 34.0) -> int:
    """Show every k-th category label so that labels do not overlap."""
    return max(1, math.ceil(count * per_label / max(room, 1.0)))


def line_chart(
    *,
    title: str,
    plot_id: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    refs: Sequence[RefLine] = (),
    frame: Frame | None = None,
) -> str:
    """Lines over a numeric x axis (rounds); points are marked when there are few of them."""
    items = [
        (line.name, PALETTE[i % len(PALETTE)], "dash" if line.dashed else "line")
        for i, line in enumerate(series)
    ]
    items += [(r.label, r.colour, "dash") for r in refs]
    frame = (frame or Frame()).with_legend(items)
    xs = [x for s in series for x in s.x]
    ys = [y for s in series for y in s.y if y is not None]
    integer = all(float(x).is_integer() for x in xs)
    x_ticks = nice_ticks(min(xs, default=0.0), max(xs, default=1.0), count=8, integer=integer)
    x_scale = LinearScale(x_ticks[0], x_ticks[-1], frame.x0, frame.x1)
    parts = svg_open(frame, title=title, plot_id=plot_id)
    y_scale, axis = frame.y_axis(_y_ticks(ys, refs, zero=False), label=y_label)
    parts += axis
    parts += frame.x_axis_line(label=x_label)
    parts += [frame.x_tick(x_scale(t), format_number(t)) for t in x_ticks]
    parts += _ref_lines(frame, y_scale, refs)
    for index, line in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        dash = ' stroke-dasharray="6 3"' if line.dashed else ""
        segment: list[str] = []
        segments: list[list[str]] = []
        for x, y in zip(line.x, line.y, strict=True):
            if y is None or not math.isfinite(y):
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{x_scale(x):.1f},{y_scale(y):.1f}")
        if segment:
            segments.append(segment)
        for points in segments:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} '
                f'points="{" ".join(points)}"/>'
            )
            if len(line.x) <= 60:
                for point in points:
                    cx, cy = point.split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.6" fill="{colour}"/>')
    parts += legend(items, x=frame.x0, y=38, max_x=frame.width - 8.0)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    *,
    title: str,
    plot_id: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    x_label: str,
    y_label: str,
    stacked: bool = False,
    refs: Sequence[RefLine] = (),
    colours: Sequence[str] | None = None,
    frame: Frame | None = None,
) -> str:
    """Bars per category: one bar per series side by side, or stacked (values >= 0)."""
    colours = list(colours or PALETTE)
    items = [(name, colours[j % len(colours)], "box") for j, (name, _v) in enumerate(series)]
    items += [(r.label, r.colour, "dash") for r in refs]
    frame = (frame or Frame()).with_legend(items)
    for name, values in series:
        if len(values) != len(categories):
            raise ValueError(f"bar series {name!r} has {len(values)} values for {len(categories)}")
    if stacked:
        totals = [sum(values[i] for _n, values in series) for i in range(len(categories))]
    else:
        totals = [v for _n, values in series for v in values]
    parts = svg_open(frame, title=title, plot_id=plot_id)
    y_scale, axis = frame.y_axis(_y_ticks(totals, refs, zero=True), label=y_label)
    parts += axis
    parts += frame.x_axis_line(label=x_label)
    slot = (frame.x1 - frame.x0) / max(len(categories), 1)
    every = _thin(len(categories), frame.x1 - frame.x0, per_label=max(34.0, _longest(categories)))
    groups = 1 if stacked else max(len(series), 1)
    bar = slot * 0.8 / groups
    for i, category in enumerate(categories):
        left = frame.x0 + i * slot + slot * 0.1
        floor = 0.0
        for j, (name, values) in enumerate(series):
            value = values[i]
            low, high = (floor, floor + value) if stacked else (0.0, value)
            x = left if stacked else left + j * bar
            top, bottom = sorted((y_scale(high), y_scale(low)))
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{max(bar - 1, 0.8):.1f}" '
                f'height="{max(bottom - top, 0.0):.1f}" fill="{colours[j % len(colours)]}">'
                f"<title>{esc(category)} {esc(name)}: {esc(format_number(value))}</title></rect>"
            )
            floor = high if stacked else floor
        if i % every == 0:
            parts.append(frame.x_tick(frame.x0 + (i + 0.5) * slot, category))
    parts += _ref_lines(frame, y_scale, refs)
    parts += legend(items, x=frame.x0, y=38, max_x=frame.width - 8.0)
    parts.append("</svg>")
    return "".join(parts)


def _longest(labels: Sequence[str]) -> float:
    return 6.5 * max((len(label) for label in labels), default=1) + 8


def hbar_chart(
    *,
    title: str,
    plot_id: str,
    labels: Sequence[str],
    values: Sequence[float],
    x_label: str,
    legend_label: str,
    width: int = 520,
) -> str:
    """One horizontal bar per label (long category names such as audit event kinds)."""
    left = int(min(max(_longest(labels), 80), width / 2))
    frame = Frame(width=width, height=70 + 22 * max(len(labels), 1), left=left, top=46)
    ticks = nice_ticks(0.0, max(list(values) + [1.0]), count=6, integer=True)
    scale = LinearScale(ticks[0], ticks[-1], frame.x0, frame.x1)
    parts = svg_open(frame, title=title, plot_id=plot_id)
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{frame.y1:.1f}" x2="{x:.1f}" y2="{frame.y0:.1f}" '
            f'stroke="#e3e3e3"/>'
        )
        parts.append(frame.x_tick(x, format_number(tick)))
    parts += frame.x_axis_line(label=x_label)
    row = (frame.y0 - frame.y1) / max(len(labels), 1)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = frame.y1 + i * row
        parts.append(
            f'<rect x="{frame.x0:.1f}" y="{y + row * 0.15:.1f}" '
            f'width="{max(scale(value) - frame.x0, 0.0):.1f}" height="{row * 0.7:.1f}" '
            f'fill="{PALETTE[0]}"><title>{esc(label)}: {esc(format_number(value))}</title></rect>'
            f'<text x="{frame.x0 - 6:.1f}" y="{y + row / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="11">{esc(label)}</text>'
            f'<text x="{scale(value) + 4:.1f}" y="{y + row / 2 + 4:.1f}" '
            f'font-size="11">{esc(format_number(value))}</text>'
        )
    parts.append(
        f'<line x1="{frame.x0:.1f}" y1="{frame.y0:.1f}" x2="{frame.x0:.1f}" y2="{frame.y1:.1f}" '
        'stroke="#444"/>'
    )
    parts += legend([(legend_label, PALETTE[0], "box")], x=frame.x0, y=36)
    parts.append("</svg>")
    return "".join(parts)


def grid_chart(
    *,
    title: str,
    plot_id: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    states: Sequence[tuple[str, str, str]],
    x_label: str,
    y_label: str,
    width: int = 520,
) -> str:
    """A grid of ``rows x columns``; ``cells[(row, column)]`` names a state of ``states``.

    ``states`` lists ``(state, legend label, colour)``; a cell without a state is left blank.
    """
    left = int(min(max(_longest(rows), 70), width / 3))
    frame = Frame(width=width, height=100 + 20 * max(len(rows), 1), left=left, top=50)
    colour = {state: c for state, _label, c in states}
    cell_w = (frame.x1 - frame.x0) / max(len(columns), 1)
    cell_h = (frame.y0 - frame.y1) / max(len(rows), 1)
    every = _thin(len(columns), frame.x1 - frame.x0, per_label=max(26.0, _longest(columns)))
    parts = svg_open(frame, title=title, plot_id=plot_id)
    for i, row in enumerate(rows):
        y = frame.y1 + i * cell_h
        parts.append(
            f'<text x="{frame.x0 - 6:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="11">{esc(row)}</text>'
        )
        for j, column in enumerate(columns):
            state = cells.get((row, column))
            if state is None or state not in colour:
                continue
            parts.append(
                f'<rect x="{frame.x0 + j * cell_w + 0.5:.1f}" y="{y + 1:.1f}" '
                f'width="{max(cell_w - 1, 0.6):.1f}" height="{max(cell_h - 2, 0.6):.1f}" '
                f'fill="{colour[state]}"><title>{esc(row)} {esc(x_label)} {esc(column)}: '
                f"{esc(state)}</title></rect>"
            )
    for j, column in enumerate(columns):
        if j % every == 0:
            parts.append(frame.x_tick(frame.x0 + (j + 0.5) * cell_w, column))
    parts += frame.x_axis_line(label=x_label)
    mid = (frame.y0 + frame.y1) / 2
    parts.append(
        f'<text x="12" y="{mid:.1f}" transform="rotate(-90 12 {mid:.1f})" text-anchor="middle" '
        f'font-size="12">{esc(y_label)}</text>'
    )
    parts += legend([(label, c, "box") for _s, label, c in states], x=frame.x0, y=38)
    parts.append("</svg>")
    return "".join(parts)
