"""The model-lineage graph: registry versions as boxes coloured by stage, parent links as arrows.

One row per model name, versions left to right in semantic-version order (the order the registry
returns them in); an arrow runs from a version's ``parent`` to the version. Versions this run
registered get a thick outline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vfl.report._axes import Frame, esc, legend, svg_open

__all__ = ["LineageNode", "STAGE_COLOURS", "lineage_chart"]

STAGE_COLOURS: dict[str, str] = {
    "candidate": "#56B4E9",
    "staging": "#E69F00",
    "production": "#009E73",
    "deprecated": "#999999",
    "archived": "#CCCCCC",
}

_BOX_W, _BOX_H, _GAP_X, _ROW_H = 112, 44, 44, 86


@dataclass(frozen=True)
class LineageNode:
    """One registered version; ``current`` marks a version registered by this run."""

    name: str
    version: str
    stage: str
    parent: str | None = None
    job_id: str = ""
    current: bool = False


def lineage_chart(*, title: str, plot_id: str, nodes: Sequence[LineageNode]) -> str:
    """The graph as one ``<svg>``; width and height grow with versions and model names."""
    names: list[str] = []
    for node in nodes:
        if node.name not in names:
            names.append(node.name)
    rows = {name: [n for n in nodes if n.name == name] for name in names}
    widest = max((len(r) for r in rows.values()), default=1)
    label_w = min(max(6.5 * max((len(n) for n in names), default=4) + 16, 80), 220)
    width = int(max(640, label_w + 20 + widest * (_BOX_W + _GAP_X)))
    frame = Frame(width=width, height=int(70 + _ROW_H * max(len(names), 1)), top=56)
    parts = svg_open(frame, title=title, plot_id=plot_id)
    marker = f"{plot_id}-arrow"
    parts.append(
        f'<defs><marker id="{esc(marker)}" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>'
    )
    where: dict[tuple[str, str], tuple[float, float]] = {}
    for r, name in enumerate(names):
        y = float(frame.top + 14 + r * _ROW_H)
        parts.append(
            f'<text x="8" y="{y + _BOX_H / 2 + 4:.1f}" font-size="12" '
            f'font-weight="600">{esc(name)}</text>'
        )
        for c, node in enumerate(rows[name]):
            x = label_w + 10 + c * (_BOX_W + _GAP_X)
            where[(name, node.version)] = (x, y)
    for node in nodes:
        if node.parent is None or (node.name, node.parent) not in where:
            continue
        px, py = where[(node.name, node.parent)]
        cx, cy = where[(node.name, node.version)]
        if cx > px and abs(cx - px) <= _BOX_W + _GAP_X + 1:
            d = f"M{px + _BOX_W:.1f},{py + _BOX_H / 2:.1f} L{cx:.1f},{cy + _BOX_H / 2:.1f}"
        else:  # skip over the boxes in between: an arc above the row
            lift = py - 14
            d = (
                f"M{px + _BOX_W / 2:.1f},{py:.1f} C{px + _BOX_W / 2:.1f},{lift:.1f} "
                f"{cx + _BOX_W / 2:.1f},{lift:.1f} {cx + _BOX_W / 2:.1f},{cy:.1f}"
            )
        parts.append(
            f'<path d="{d}" fill="none" stroke="#444" stroke-width="1.4" '
            f'marker-end="url(#{esc(marker)})"><title>{esc(node.parent)} -&gt; '
            f"{esc(node.version)}</title></path>"
        )
    for node in nodes:
        x, y = where[(node.name, node.version)]
        fill = STAGE_COLOURS.get(node.stage, "#ffffff")
        stroke = ' stroke="#000" stroke-width="3"' if node.current else ' stroke="#444"'
        tip = f"{node.name} {node.version}: {node.stage}" + (
            f", job {node.job_id}" if node.job_id else ""
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{_BOX_W}" height="{_BOX_H}" rx="6" '
            f'fill="{fill}"{stroke}><title>{esc(tip)}</title></rect>'
            f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
            f'font-size="13" font-weight="600">{esc(node.version)}</text>'
            f'<text x="{x + _BOX_W / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
            f'font-size="11">{esc(node.stage)}</text>'
        )
    items = [(stage, colour, "box") for stage, colour in STAGE_COLOURS.items()]
    items.append(("this run (thick outline)", "#000000", "line"))
    parts += legend(items, x=8, y=38, max_x=width - 8.0)
    parts.append("</svg>")
    return "".join(parts)
