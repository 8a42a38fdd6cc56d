"""Build the HTML report of one run directory, and write it atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crypto.keys import VerifyKey
from vfl._atomic import atomic_write
from vfl.report._errors import ReportError
from vfl.report._governance import read_audit, read_lineage
from vfl.report._html import Section, page
from vfl.report._plots import (
    bytes_section,
    leak_section,
    metrics_section,
    participation_section,
    privacy_section,
    timing_section,
)
from vfl.report._rundir import find_work_dir, load_run
from vfl.report._sections import audit_section, lineage_section, summary_section, when
from vfl.report._view import view_of

__all__ = ["Report", "render_report", "build_report", "write_report"]


@dataclass(frozen=True)
class Report:
    """A rendered report: the HTML and the ids of the plots it holds (in page order)."""

    html: str
    plots: tuple[str, ...]
    work_dir: Path | None


def render_report(
    run_dir: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    audit_key: VerifyKey | None = None,
) -> Report:
    """Read ``run_dir`` (and the work dir's audit.db / registry.db) and render the report.

    ``work_dir`` defaults to ``RUN_DIR/../../..`` when that holds ``audit.db`` or
    ``registry.db``; without one the lineage and audit sections say so. ``audit_key`` pins the
    party's audit public key for the chain check (default: the key stored in the log).
    """
    files = load_run(run_dir)
    view = view_of(files)
    base: Path | None = find_work_dir(files.run_dir)
    if work_dir is not None:
        base = Path(work_dir)
        if not base.is_dir():
            raise ReportError(f"no work directory at {base}")
    lineage = audit = None
    if base is not None:
        touched = [(m["name"], m["version"]) for m in view.models]
        lineage = read_lineage(base / "registry.db", job_id=view.job_id, touched=touched)
        audit = read_audit(base / "audit.db", job_id=view.job_id, verify_key=audit_key)
    sections: list[Section] = [
        summary_section(view, lineage=lineage),
        metrics_section(view),
        privacy_section(view),
        bytes_section(view),
        participation_section(view),
        leak_section(view),
        timing_section(view),
        lineage_section(lineage),
        audit_section(audit, job_id=view.job_id),
    ]
    html = page(
        title=f"Run report: {view.job_id} ({view.party})",
        subtitle=(
            f"{view.job_type} job, party {view.party}, phase {view.phase}; "
            f"last update {when(view.updated)}; run directory {files.run_dir}"
        ),
        sections=sections,
    )
    plots = tuple(p for s in sections for p in s.plots)
    return Report(html=html, plots=plots, work_dir=base)


def build_report(
    run_dir: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    audit_key: VerifyKey | None = None,
) -> str:
    """The report of ``run_dir`` as one self-contained HTML document (see :func:`render_report`).

    Raises :class:`ReportError` when ``run_dir`` has neither ``status.json`` nor ``result.json``.
    """
    return render_report(run_dir, work_dir=work_dir, audit_key=audit_key).html


def write_report(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    work_dir: str | os.PathLike[str] | None = None,
    audit_key: VerifyKey | None = None,
) -> Report:
    """Render and write the report to ``out`` atomically (:func:`vfl._atomic.atomic_write`).

    Nothing is written when the run directory is refused; a reader never sees half a file.
    """
    report = render_report(run_dir, work_dir=work_dir, audit_key=audit_key)
    target = Path(out)
    if target.is_dir():
        raise ReportError(f"{target} is a directory; give a file name for the report")
    try:
        atomic_write(target, report.html, mode=0o644)  # a report is for people to read
    except OSError as exc:
        raise ReportError(f"cannot write {target}: {exc.strerror or exc}") from None
    return report
