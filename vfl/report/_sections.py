"""The report's summary table and its governance sections (model lineage, audit summary)."""

from __future__ import annotations

from datetime import UTC, datetime

from vfl.report._axes import esc
from vfl.report._charts import hbar_chart
from vfl.report._governance import AuditSummary, Lineage
from vfl.report._html import Figure, Section, key_values, note, table
from vfl.report._lineage import lineage_chart
from vfl.report._plots import byte_unit
from vfl.report._view import RunView

__all__ = ["summary_section", "lineage_section", "audit_section", "when"]


def when(unix: float | None) -> str:
    """A unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` when unknown)."""
    if unix is None:
        return "-"
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _bytes(value: float | None) -> str:
    if value is None:
        return "-"
    unit, size = byte_unit(value)
    return f"{int(value):,} B" if unit == "B" else f"{value / size:.2f} {unit} ({int(value):,} B)"


def _crypto(view: RunView) -> str:
    crypto = view.crypto
    if not crypto:
        return "-"
    scheme = str(crypto.get("scheme", "?"))
    if crypto.get("key_bits"):
        return f"{scheme}, {crypto['key_bits']}-bit key"
    if crypto.get("ckks_preset"):
        return f"{scheme}, preset {crypto['ckks_preset']}"
    return scheme


def summary_section(view: RunView, *, lineage: Lineage | None) -> Section:
    """Job, parties, PSI, crypto, timings, bytes, final metrics and model version in one table."""
    parties = ", ".join(f"{p} (label)" if p == view.label_party else p for p in view.parties) or "-"
    psi = "-" if view.intersection_size is None else f"{view.intersection_size:,}"
    if view.input_rows is not None and view.intersection_size is not None:
        psi += f" of {view.input_rows:,} own rows"
    timing = ", ".join(f"{k} {v:.2f} s" for k, v in view.timing.items()) or "-"
    metrics = ", ".join(f"{k} = {v:.4g}" for k, v in sorted(view.metrics.items())) or "-"
    versions = [f"{m['name']} {m['version']} ({m['stage']})" for m in view.models]
    if not versions and lineage is not None:
        versions = [f"{n.name} {n.version} ({n.stage})" for n in lineage.nodes if n.current]
    dp = "no DP" if view.epsilon is None else f"epsilon {view.epsilon:.4g}"
    if view.epsilon is not None and view.delta is not None:
        dp += f", delta {view.delta:.3g}"
    rounds = len(view.rounds)
    pairs: list[tuple[str, object]] = [
        ("job", view.job_id),
        ("type", view.job_type),
        ("this party", view.party),
        ("parties", parties),
        ("phase", view.phase),
        ("started / updated", f"{when(view.started)} / {when(view.updated)}"),
        ("intersection size", psi),
        ("rows", ", ".join(f"{k} {v:,}" for k, v in view.rows.items()) or "-"),
        ("crypto", _crypto(view)),
        ("timings", timing),
        ("bytes sent", _bytes(view.bytes_sent)),
        ("bytes received", _bytes(view.bytes_received)),
        ("rounds recorded", rounds),
        ("final metrics", metrics),
        ("differential privacy", dp),
        ("model version", ", ".join(versions) or "-"),
    ]
    if view.error:
        pairs.insert(5, ("error", view.error))
    intro = key_values(pairs)
    if view.alerts:
        intro += "<h3>Alerts</h3>" + table(
            ["alert", "message"], [(a["alert"], a["message"]) for a in view.alerts]
        )
    if view.skipped_lines:
        intro += note(f"Skipped unreadable event lines: {view.skipped_lines}.")
    if view.phase not in ("done", "failed"):
        intro += note(f"The run is still going (phase {view.phase}); this report is a snapshot.")
    return Section("summary", "Summary", intro=intro)


def lineage_section(lineage: Lineage | None) -> Section:
    """The registry's versions as a graph, and their stage history."""
    if lineage is None:
        return Section("lineage", "Model lineage", intro=note("No work directory: no registry."))
    if lineage.error is not None:
        return Section("lineage", "Model lineage", intro=note(lineage.error))
    if not lineage.nodes:
        return Section("lineage", "Model lineage", intro=note("The model registry is empty."))
    svg = lineage_chart(title="Model lineage (registry)", plot_id="lineage", nodes=lineage.nodes)
    rows = [
        (
            h["name"],
            h["version"],
            h["from_stage"] or "-",
            h["to_stage"],
            h["time"],
            h["actor"],
            h["reason"],
            h["previous"] or "-",
        )
        for h in lineage.history
    ]
    outro = "<h3>Stage history</h3>" + table(
        ["model", "version", "from", "to", "time", "actor", "reason", "displaced"], rows
    )
    if lineage.omitted:
        outro += note(f"Not drawn: {lineage.omitted} older or unrelated model versions.")
    return Section(
        "lineage",
        "Model lineage",
        intro=f"<p>Registry: <code>{esc(lineage.path)}</code></p>",
        figures=(Figure("lineage", svg),),
        outro=outro,
    )


def audit_section(audit: AuditSummary | None, *, job_id: str) -> Section:
    """Chain verified?, records per event kind (plot), and the peers' signed heads."""
    if audit is None:
        return Section("audit", "Audit trail", intro=note("No work directory: no audit log."))
    if audit.error is not None and not audit.counts:
        return Section("audit", "Audit trail", intro=note(audit.error))
    if audit.ok is None:
        verdict = f'<span class="bad">not verified</span>: {esc(audit.error or "")}'
    elif audit.ok:
        key = "pinned key" if audit.key_pinned else "the key stored in the log (not pinned)"
        verdict = (
            f'<span class="good">chain verified</span>: {audit.records} records, hashes and '
            f"signatures check out under {esc(key)}"
        )
    else:
        verdict = f'<span class="bad">TAMPERED</span>: {esc(audit.reason or "")}'
    intro = f"<p>Audit log of <b>{esc(audit.party)}</b>: <code>{esc(audit.path)}</code></p>"
    intro += f"<p>{verdict}</p>"
    kinds = sorted(audit.counts, key=lambda k: (-audit.counts[k], k))
    svg = hbar_chart(
        title="Audit records per event kind",
        plot_id="audit-events",
        labels=kinds,
        values=[float(audit.counts[k]) for k in kinds],
        x_label="records",
        legend_label="records in the whole log",
    )
    rows = [(k, audit.counts[k], audit.job_counts.get(k, 0)) for k in kinds]
    outro = table(["event kind", "records (log)", f"records naming job {job_id}"], rows)
    if audit.heads:
        outro += "<h3>Peers' signed chain heads held here</h3>" + table(
            ["peer", "job", "seq", "hash", "time", "signature"],
            [
                (
                    h.party,
                    h.job_id,
                    h.seq,
                    h.hash[:16] + "...",
                    h.time,
                    "ok" if h.signature_ok else "BAD",
                )
                for h in audit.heads
            ],
        )
    else:
        outro += note("No peer has sent its signed chain head to this log yet.")
    return Section(
        "audit", "Audit trail", intro=intro, figures=(Figure("audit-events", svg),), outro=outro
    )
