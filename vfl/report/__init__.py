"""Run reports (issue 9, item 5): one self-contained HTML file with inline SVG plots.

:func:`build_report` reads a run directory (``WORK_DIR/runs/JOB_ID/PARTY``: ``status.json``,
``events.jsonl``, ``result.json``) and the party's ``audit.db`` / ``registry.db``, and returns
the HTML: a summary table, metrics over rounds, privacy budget, bytes per round, participation,
leak AUC, time per phase, model lineage and the audit summary. :func:`write_report` writes it
atomically. The page has no scripts and loads nothing: it opens offline.
"""

from vfl.report._build import Report, build_report, render_report, write_report
from vfl.report._errors import ReportError

__all__ = ["build_report", "write_report", "render_report", "Report", "ReportError"]
