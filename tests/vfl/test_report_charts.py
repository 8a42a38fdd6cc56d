"""The report's SVG plotting: nice ticks, number labels, line/bar/grid charts, lineage graph."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vfl.report._axes import Frame, format_number, legend_rows, nice_number, nice_ticks
from vfl.report._charts import RefLine, Series, bar_chart, grid_chart, hbar_chart, line_chart
from vfl.report._lineage import LineageNode, lineage_chart

SVG = "{http://www.w3.org/2000/svg}"


def _xml(svg: str) -> ET.Element:
    """Each chart must be well-formed XML on its own (it is inlined as SVG)."""
    return ET.fromstring(svg)


finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(finite, finite)
def test_nice_ticks_cover_the_range_with_equal_nice_steps(a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    ticks = nice_ticks(lo, hi)
    assert ticks[0] <= lo + 1e-9 * max(1.0, abs(lo))
    assert ticks[-1] >= hi - 1e-9 * max(1.0, abs(hi))
    assert 2 <= len(ticks) <= 12
    steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    step = steps[0]
    assert all(math.isclose(s, step, rel_tol=1e-6, abs_tol=1e-9) for s in steps)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (1, 2, 5, 10))


@given(st.integers(min_value=1, max_value=500))
def test_integer_ticks_for_rounds(n: int) -> None:
    ticks = nice_ticks(1, n, count=8, integer=True)
    assert all(float(t).is_integer() for t in ticks)
    assert ticks[0] <= 1 and ticks[-1] >= n


def test_nice_numbers_and_labels() -> None:
    assert nice_number(0.37, round_=True) == 0.5
    assert nice_number(73.0, round_=False) == 100.0
    assert nice_ticks(0.0, 0.93) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(5.0, 5.0)[0] < 5.0 < nice_ticks(5.0, 5.0)[-1]
    assert [format_number(v) for v in (0, 2.0, 0.25, 1234567.0, 1.5e-5)] == [
        "0",
        "2",
        "0.25",
        "1.23e+06",
        "1.5e-05",
    ]
    with pytest.raises(ValueError, match="finite"):
        nice_ticks(0.0, math.inf)


def test_line_chart_axes_legend_and_gaps() -> None:
    svg = line_chart(
        title="Loss <&>",
        plot_id="p1",
        series=[
            Series("loss", (1.0, 2.0, 3.0, 4.0), (0.7, None, 0.5, 0.4)),
            Series("val <b>", (1.0, 2.0, 3.0, 4.0), (0.8, 0.7, 0.6, 0.5), dashed=True),
        ],
        x_label="round",
        y_label="loss",
        refs=[RefLine(0.5, "chance")],
    )
    root = _xml(svg)
    assert root.get("id") == "p1"
    assert root.find(f"{SVG}title") is not None
    polylines = root.findall(f"{SVG}polyline")
    assert len(polylines) == 3  # the gap splits the first line in two
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"Loss <&>", "round", "loss", "val <b>", "chance"} <= set(texts)
    assert {"1", "2", "3", "4"} <= set(texts)  # x ticks
    assert "<b>" not in svg and "&lt;b&gt;" in svg


def test_bar_chart_grouped_stacked_and_checked() -> None:
    grouped = _xml(
        bar_chart(
            title="Bytes",
            plot_id="b",
            categories=["1", "2"],
            series=[("sent", [1.0, 2.0]), ("received", [3.0, 4.0])],
            x_label="round",
            y_label="KiB",
        )
    )
    bars = [r for r in grouped.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 4
    stacked = _xml(
        bar_chart(
            title="P",
            plot_id="s",
            categories=["1"],
            series=[("in", [2.0]), ("out", [1.0])],
            x_label="round",
            y_label="parties",
            stacked=True,
        )
    )
    rects = [r for r in stacked.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len({r.get("x") for r in rects}) == 1  # on top of each other
    heights = sorted(float(r.get("height") or 0) for r in rects)
    assert math.isclose(heights[1], 2 * heights[0], rel_tol=0.02)
    with pytest.raises(ValueError, match="values"):
        bar_chart(
            title="t",
            plot_id="x",
            categories=["a", "b"],
            series=[("s", [1.0])],
            x_label="x",
            y_label="y",
        )


def test_long_legends_wrap_and_grow_the_chart() -> None:
    items = [(f"a rather long series name {i}", "#000", "line") for i in range(6)]
    assert legend_rows(items, x=60, max_x=500) > 1
    frame = Frame().with_legend(items)
    assert frame.top > Frame().top and frame.height > Frame().height
    assert Frame().with_legend(items[:1]) == Frame()


def test_hbar_and_grid_charts() -> None:
    root = _xml(
        hbar_chart(
            title="Events",
            plot_id="h",
            labels=["job.started", "train.round_metrics"],
            values=[1.0, 8.0],
            x_label="records",
            legend_label="records",
        )
    )
    assert {"job.started", "train.round_metrics", "8"} <= {t.text for t in root.iter(f"{SVG}text")}
    grid = _xml(
        grid_chart(
            title="Parties",
            plot_id="g",
            rows=["bank", "retailer"],
            columns=["1", "2"],
            cells={("bank", "1"): "in", ("retailer", "2"): "out", ("bank", "2"): "unknown"},
            states=[("in", "took part", "#0f0"), ("out", "dropped", "#f00")],
            x_label="round",
            y_label="party",
        )
    )
    cells = [r for r in grid.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert sorted(r.get("fill") or "" for r in cells) == ["#0f0", "#f00"]


def test_lineage_graph_links_parents() -> None:
    nodes = [
        LineageNode("credit", "0.1.0", "deprecated"),
        LineageNode("credit", "0.2.0", "production", parent="0.1.0"),
        LineageNode("credit", "0.3.0", "candidate", parent="0.1.0", current=True),
        LineageNode("churn", "1.0.0", "staging", parent="0.9.0"),  # parent not drawn
    ]
    root = _xml(lineage_chart(title="Lineage", plot_id="lin", nodes=nodes))
    paths = [p for p in root.iter(f"{SVG}path") if p.get("marker-end")]
    assert len(paths) == 2
    assert "C" in (paths[1].get("d") or "")  # 0.1.0 -> 0.3.0 arcs over 0.2.0
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"credit", "churn", "0.1.0", "0.2.0", "0.3.0", "1.0.0", "production"} <= texts
    thick = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-width") == "3"]
    assert len(thick) == 1
