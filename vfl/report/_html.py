"""The HTML skeleton of a report: one file, inline CSS, no scripts, no external resources.

Every piece of text from a run's files is escaped here or in the charts (:func:`esc`); the
Content-Security-Policy forbids scripts and any fetch, so even a missed escape could not run code
or phone home when the report is opened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vfl.report._axes import FONT, esc

__all__ = ["Figure", "Section", "table", "key_values", "note", "page"]

_CSS = f"""
body {{ {FONT}; margin: 0 auto; max-width: 1120px; padding: 16px 24px 48px; color: #222;
  background: #fff; }}
h1 {{ font-size: 22px; margin: 8px 0 4px; }}
h2 {{ font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
p.meta {{ color: #555; margin: 0 0 12px; }}
table {{ border-collapse: collapse; margin: 8px 0 12px; font-size: 13px; }}
th, td {{ border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f4f6f8; font-weight: 600; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; border: 1px solid #eee; border-radius: 6px; padding: 4px; }}
svg.plot {{ max-width: 100%; height: auto; display: block; }}
p.note {{ background: #f7f7f2; border-left: 4px solid #c9c38a; padding: 6px 10px; }}
.bad {{ color: #b00020; font-weight: 600; }}
.good {{ color: #007a3d; font-weight: 600; }}
code {{ font-size: 12px; }}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@dataclass(frozen=True)
class Figure:
    """One inline SVG plot; ``plot_id`` is its id in the page (listed by ``vfl report --json``)."""

    plot_id: str
    svg: str


@dataclass(frozen=True)
class Section:
    """A titled part of the report: HTML before the figures, the figures, HTML after them."""

    section_id: str
    title: str
    intro: str = ""
    figures: tuple[Figure, ...] = ()
    outro: str = ""
    plots: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "plots", tuple(f.plot_id for f in self.figures))

    def html(self) -> str:
        figures = "".join(f"<figure>{f.svg}</figure>" for f in self.figures)
        block = f'<div class="figures">{figures}</div>' if figures else ""
        return (
            f'<section id="section-{esc(self.section_id)}"><h2>{esc(self.title)}</h2>'
            f"{self.intro}{block}{self.outro}</section>\n"
        )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A table; numbers are right-aligned, everything is escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, int | float) and not isinstance(cell, bool)
            cls = ' class="num"' if numeric else ""
            cells.append(f"<td{cls}>{esc(cell)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    """A two-column table of ``(name, value)`` with the names as row headers."""
    rows = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in pairs)
    return f"<table><tbody>{rows}</tbody></table>"


def note(text: str) -> str:
    """A highlighted sentence (e.g. "no DP in this run")."""
    return f'<p class="note">{esc(text)}</p>'


def page(*, title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole document."""
    toc = " &middot; ".join(
        f'<a href="#section-{esc(s.section_id)}">{esc(s.title)}</a>' for s in sections
    )
    body = "".join(s.html() for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f'<body><h1>{esc(title)}</h1><p class="meta">{esc(subtitle)}</p>'
        f"<nav>{toc}</nav>\n{body}</body></html>\n"
    )
