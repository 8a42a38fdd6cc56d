"""Scales, "nice" tick values, number formatting and the shared frame of every SVG chart.

Tick values follow Heckbert's nice-number rule (P. Heckbert, "Nice numbers for graph labels",
Graphics Gems, 1990): the step is ``f * 10^e`` with ``f`` in ``{1, 2, 5, 10}`` chosen so that
``(hi - lo) / step`` is close to the wanted tick count, and the axis range is widened to whole
steps. All text that reaches SVG goes through :func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = [
    "PALETTE",
    "FONT",
    "esc",
    "nice_number",
    "nice_ticks",
    "format_number",
    "LinearScale",
    "Frame",
    "legend",
    "legend_rows",
    "svg_open",
]

# Colour-blind-safe palette (Okabe & Ito, "Color Universal Design", 2008).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def esc(text: object) -> str:
    """``text`` escaped for HTML and SVG content and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def nice_number(x: float, *, round_: bool) -> float:
    """The "nice" number (1, 2, 5 or 10 times a power of ten) closest to ``x`` (Heckbert 1990).

    >>> nice_number(0.37, round_=True), nice_number(73.0, round_=False)
    (0.5, 100.0)
    """
    if x <= 0 or not math.isfinite(x):
        return 1.0
    exponent = math.floor(math.log10(x))
    fraction = x / 10**exponent
    if round_:
        nice = 1.0 if fraction < 1.5 else 2.0 if fraction < 3 else 5.0 if fraction < 7 else 10.0
    else:
        nice = 1.0 if fraction <= 1 else 2.0 if fraction <= 2 else 5.0 if fraction <= 5 else 10.0
    return nice * 10.0**exponent


def nice_ticks(lo: float, hi: float, *, count: int = 5, integer: bool = False) -> list[float]:
    """Tick values covering ``[lo, hi]``: ``nice_number`` step, range widened to whole steps.

    ``integer`` keeps the step at least 1 (round numbers on an axis of rounds).

    >>> nice_ticks(0.0, 0.93)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(1, 3, integer=True)
    [1.0, 2.0, 3.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(hi - lo)):
        raise ValueError("tick range must be finite")
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    span = nice_number(hi - lo, round_=False)
    step = nice_number(span / max(count - 1, 1), round_=True)
    if integer:
        step = max(step, 1.0)
    first = math.floor(lo / step) * step
    last = math.ceil(hi / step) * step
    n = int(round((last - first) / step))
    digits = 6 - math.floor(math.log10(step))  # drop float noise such as 0.6000000000000001
    return [round(first + i * step, digits) for i in range(n + 1)]


def format_number(value: float) -> str:
    """Short label for an axis or a table: ``12``, ``0.25``, ``1.5e-05``, ``3.2e+06``.

    >>> format_number(0.25), format_number(1234567.0), format_number(2.0)
    ('0.25', '1.23e+06', '2')
    """
    if value == 0:
        return "0"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.3g}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


@dataclass(frozen=True)
class LinearScale:
    """Maps data ``[lo, hi]`` onto pixels ``[start, end]`` (``end < start`` for a y axis)."""

    lo: float
    hi: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.start + (value - self.lo) / span * (self.end - self.start)


@dataclass(frozen=True)
class Frame:
    """The plotting area of a chart: outer size and margins, in pixels."""

    width: int = 520
    height: int = 290
    left: int = 68
    right: int = 18
    top: int = 52
    bottom: int = 48

    @property
    def x0(self) -> float:
        return float(self.left)

    @property
    def x1(self) -> float:
        return float(self.width - self.right)

    @property
    def y0(self) -> float:
        """The bottom of the plotting area (the x axis)."""
        return float(self.height - self.bottom)

    @property
    def y1(self) -> float:
        return float(self.top)

    def with_legend(self, items: Sequence[tuple[str, str, str]]) -> Frame:
        """This frame, taller at the top when the legend needs more than one row."""
        extra = 14 * (legend_rows(items, x=self.x0, max_x=self.width - 8.0) - 1)
        return replace(self, top=self.top + extra, height=self.height + extra)

    def y_axis(self, ticks: Sequence[float], *, label: str) -> tuple[LinearScale, list[str]]:
        """The y scale over ``ticks`` and the SVG of grid lines, tick labels and axis label."""
        scale = LinearScale(ticks[0], ticks[-1], self.y0, self.y1)
        parts = []
        for tick in ticks:
            y = scale(tick)
            parts.append(
                f'<line x1="{self.x0:.1f}" y1="{y:.1f}" x2="{self.x1:.1f}" y2="{y:.1f}" '
                'stroke="#e3e3e3"/>'
                f'<text x="{self.x0 - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
                f'font-size="11">{esc(format_number(tick))}</text>'
            )
        mid = (self.y0 + self.y1) / 2
        parts.append(
            f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" '
            f'text-anchor="middle" font-size="12">{esc(label)}</text>'
        )
        parts.append(
            f'<line x1="{self.x0:.1f}" y1="{self.y0:.1f}" x2="{self.x0:.1f}" '
            f'y2="{self.y1:.1f}" stroke="#444"/>'
        )
        return scale, parts

    def x_axis_line(self, *, label: str) -> list[str]:
        """The x axis line and its label (tick marks are drawn by each chart)."""
        mid = (self.x0 + self.x1) / 2
        return [
            f'<line x1="{self.x0:.1f}" y1="{self.y0:.1f}" x2="{self.x1:.1f}" y2="{self.y0:.1f}" '
            'stroke="#444"/>',
            f'<text x="{mid:.1f}" y="{self.height - 8}" text-anchor="middle" '
            f'font-size="12">{esc(label)}</text>',
        ]

    def x_tick(self, x: float, text: str) -> str:
        return (
            f'<line x1="{x:.1f}" y1="{self.y0:.1f}" x2="{x:.1f}" y2="{self.y0 + 4:.1f}" '
            f'stroke="#444"/><text x="{x:.1f}" y="{self.y0 + 17:.1f}" text-anchor="middle" '
            f'font-size="11">{esc(text)}</text>'
        )


def _item_width(label: str) -> float:
    return 18 + 6.5 * len(label) + 16


def legend_rows(items: Sequence[tuple[str, str, str]], *, x: float, max_x: float) -> int:
    """How many rows :func:`legend` needs between ``x`` and ``max_x``."""
    rows, cursor = 1, x
    for label, _colour, _kind in items:
        if cursor > x and cursor + _item_width(label) > max_x:
            rows, cursor = rows + 1, x
        cursor += _item_width(label)
    return rows


def legend(
    items: Sequence[tuple[str, str, str]], *, x: float, y: float, max_x: float = 1e9
) -> list[str]:
    """A legend of ``(label, colour, kind)``, wrapped at ``max_x`` into rows 14 px apart.

    ``kind`` is ``line``, ``dash`` or ``box``.
    """
    parts = []
    cursor = x
    for label, colour, kind in items:
        if cursor > x and cursor + _item_width(label) > max_x:
            cursor, y = x, y + 14
        if kind == "box":
            parts.append(
                f'<rect x="{cursor:.1f}" y="{y - 9:.1f}" width="12" height="10" fill="{colour}"/>'
            )
        else:
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            parts.append(
                f'<line x1="{cursor:.1f}" y1="{y - 4:.1f}" x2="{cursor + 14:.1f}" '
                f'y2="{y - 4:.1f}" stroke="{colour}" stroke-width="2"{dash}/>'
            )
        parts.append(f'<text x="{cursor + 18:.1f}" y="{y:.1f}" font-size="11">{esc(label)}</text>')
        cursor += _item_width(label)
    return parts


def svg_open(frame: Frame, *, title: str, plot_id: str) -> list[str]:
    """The ``<svg>`` start tag (with ``<title>`` for screen readers) and the chart title."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="{esc(plot_id)}" '
        f'width="{frame.width}" height="{frame.height}" '
        f'viewBox="0 0 {frame.width} {frame.height}" role="img" style="{FONT}">',
        f"<title>{esc(title)}</title>",
        f'<text x="{frame.width / 2:.1f}" y="18" text-anchor="middle" font-size="14" '
        f'font-weight="600">{esc(title)}</text>',
    ]
