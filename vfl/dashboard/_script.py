"""The dashboard page's script: poll ``/api/status`` every 2 s and draw it with DOM calls.

Values from the run files only ever reach the page through ``textContent`` and
``setAttribute`` (never ``innerHTML``); charts are SVG elements built the same way. Allowed by
the page's Content-Security-Policy through its SHA-256 hash (:mod:`vfl.dashboard._page`).
"""

from __future__ import annotations

__all__ = ["SCRIPT", "POLL_SECONDS"]

POLL_SECONDS = 2.0

_TEMPLATE = r"""
"use strict";
(function () {
  const POLL_MS = __POLL_MS__;
  const job = new URLSearchParams(location.search).get("job");
  const API = "/api/status" + (job ? "?job=" + encodeURIComponent(job) : "");
  const SVGNS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
  const $ = (id) => document.getElementById(id);
  let chartKey = "";

  function make(ns, tag, attrs, text) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const el = (tag, attrs, text) => make(null, tag, attrs, text);
  const sv = (tag, attrs, text) => make(SVGNS, tag, attrs, text);
  const isNum = (v) => typeof v === "number" && isFinite(v);
  function fmt(v) {
    if (!isNum(v)) return "\u2013";
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a < 1e-3 || a >= 1e6) return Number(v.toPrecision(4)).toExponential();
    return String(Number(v.toPrecision(4)));
  }
  function bytes(n) {
    if (!isNum(n)) return "\u2013";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let x = n, i = 0;
    while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
    return (i === 0 ? String(Math.round(x)) : x.toFixed(1)) + " " + units[i];
  }
  function ago(t, now) {
    if (!isNum(t)) return "never";
    const s = Math.max(0, now - t);
    if (s < 60) return s.toFixed(0) + " s ago";
    if (s < 3600) return (s / 60).toFixed(0) + " min ago";
    return (s / 3600).toFixed(1) + " h ago";
  }
  function setText(id, text) { const e = $(id); if (e.textContent !== text) e.textContent = text; }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function niceStep(span, n) {
    const raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }

  function chart(title, series, opts) {
    const W = 460, H = 220, L = 60, R = 12, T = 30, B = 34;
    const yf = opts.bytes ? bytes : fmt;
    const fig = el("figure", { "class": "chart", "data-chart": title });
    const svg = sv("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
    svg.appendChild(sv("text", { x: 8, y: 18, "class": "title" }, title));
    fig.appendChild(svg);
    const all = series.flatMap((s) => s.points);
    if (!all.length) {
      svg.appendChild(sv("text", { x: W / 2, y: H / 2, "text-anchor": "middle", "class": "empty" },
        "no data yet"));
      return fig;
    }
    let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
    let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
    if (opts.zero) y0 = Math.min(0, y0);
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { const d = Math.abs(y0) * 0.1 || 1; y0 -= d; y1 += d; }
    let unit = 1;
    if (opts.bytes) {
      const top = Math.max(Math.abs(y0), Math.abs(y1), 1);
      unit = Math.pow(1024, Math.floor(Math.log(top) / Math.log(1024)));
    }
    const step = niceStep((y1 - y0) / unit, 4) * unit;
    y0 = Math.floor(y0 / step) * step;
    y1 = Math.ceil(y1 / step) * step;
    const ticks = Math.round((y1 - y0) / step);
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= ticks; i += 1) {
      const y = Number((y0 + step * i).toPrecision(12)), py = sy(y).toFixed(1);
      svg.appendChild(sv("line", { x1: L, x2: W - R, y1: py, y2: py, "class": "grid" }));
      svg.appendChild(sv("text", { x: L - 6, y: Number(py) + 4, "text-anchor": "end",
        "class": "tick" }, yf(y)));
    }
    const xs = [...new Set(all.map((p) => p[0]))].sort((a, b) => a - b);
    const every = Math.ceil(xs.length / 10);
    xs.forEach((x, i) => {
      if (i % every === 0 || i === xs.length - 1) {
        svg.appendChild(sv("text", { x: sx(x).toFixed(1), y: H - B + 15, "text-anchor": "middle",
          "class": "tick" }, String(x)));
      }
    });
    svg.appendChild(sv("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle",
      "class": "axis" }, "round"));
    series.forEach((s, k) => {
      const color = COLORS[k % COLORS.length];
      const pts = s.points.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1));
      svg.appendChild(sv("polyline", { points: pts.join(" "), fill: "none", stroke: color,
        "stroke-width": 2, "data-series": s.name }));
      for (const p of s.points) {
        const dot = sv("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 3,
          fill: color, "class": "point", "data-series": s.name, "data-round": p[0],
          "data-value": p[1] });
        dot.appendChild(sv("title", {}, `${s.name}, round ${p[0]}: ${yf(p[1])}`));
        svg.appendChild(dot);
      }
      if (series.length > 1) {
        const lx = W - R - 120 * (series.length - k);
        svg.appendChild(sv("rect", { x: lx, y: 9, width: 10, height: 10, fill: color }));
        svg.appendChild(sv("text", { x: lx + 14, y: 18, "class": "legend" }, s.name));
      }
    });
    const caption = series.filter((s) => s.points.length)
      .map((s) => `${s.name}: ${yf(s.points[s.points.length - 1][1])}`).join(" \u00b7 ");
    fig.appendChild(el("figcaption", {}, "latest " + caption));
    return fig;
  }

  function points(rounds, get) {
    const out = [];
    for (const r of rounds) { const v = get(r); if (isNum(v)) out.push([r.round, v]); }
    return out;
  }

  function metricNames(rounds) {
    const names = new Set();
    for (const r of rounds) for (const k of Object.keys(r.metrics || {})) names.add(k);
    return [...names].sort((a, b) => (a === "loss" ? -1 : b === "loss" ? 1 : a.localeCompare(b)));
  }

  function drawCharts(d) {
    const rounds = d.rounds;
    const key = JSON.stringify([d.run.job_id, d.run.party, rounds.length,
      rounds.length ? rounds[rounds.length - 1] : null]);
    if (key === chartKey) return;
    chartKey = key;
    const box = $("charts");
    clear(box);
    const names = metricNames(rounds);
    if (!names.length) box.appendChild(chart("model metrics", [], {}));
    for (const name of names) {
      box.appendChild(chart(name, [{ name, points: points(rounds, (r) => (r.metrics || {})[name]) }],
        {}));
    }
    const sys = $("system-charts");
    clear(sys);
    sys.appendChild(chart("bytes per round", [
      { name: "sent", points: points(rounds, (r) => r.bytes_sent) },
      { name: "received", points: points(rounds, (r) => r.bytes_received) }], { bytes: true,
      zero: true }));
    const crypto = points(rounds, (r) => r.crypto_seconds);
    sys.appendChild(chart("seconds per round", [{ name: "round", points: points(rounds,
      (r) => r.seconds) }].concat(crypto.length ? [{ name: "crypto", points: crypto }] : []),
      { zero: true }));
    const eps = points(rounds, (r) => r.epsilon);
    if (eps.length) sys.appendChild(chart("epsilon spent", [{ name: "epsilon", points: eps }],
      { zero: true }));
  }

  function drawTable(tbody, rows) {
    clear(tbody);
    for (const cells of rows) {
      const tr = el("tr", cells.attrs || {});
      for (const c of cells.cells) tr.appendChild(el(c.th ? "th" : "td", c.attrs || {}, c.text));
      tbody.appendChild(tr);
    }
  }

  function render(d) {
    const now = d.server_time;
    const run = d.run;
    if (!run) {
      setText("job", "no run in this work directory yet");
      return;
    }
    const st = d.status || {};
    setText("job", run.job_id);
    setText("party", run.party);
    setText("jobtype", (st.type || "") + (st.label_party ? " \u00b7 label party " +
      st.label_party : ""));
    const phase = $("phase");
    phase.textContent = run.phase;
    phase.className = "value phase-" + run.phase;
    const last = d.rounds.length ? d.rounds[d.rounds.length - 1].round : 0;
    const round = isNum(st.round) ? st.round : last;
    const total = isNum(st.total_rounds) ? st.total_rounds : null;
    setText("round", total ? `${round} / ${total}` : String(round));
    const bar = $("progress");
    if (total) { bar.max = total; bar.value = Math.min(round, total); }
    else if (run.phase === "done") { bar.max = 1; bar.value = 1; }
    else bar.removeAttribute("value");
    setText("epsilon", isNum(st.epsilon) ? fmt(st.epsilon) : "not used");
    setText("delta", isNum(st.delta) ? "\u03b4 = " + fmt(st.delta) : "");
    setText("bytes", bytes(st.bytes_sent));
    setText("bytes-sub", "received " + bytes(st.bytes_received));
    setText("crypto", isNum(st.crypto_share) ? (100 * st.crypto_share).toFixed(1) + " %" :
      "\u2013");
    setText("crypto-sub", isNum(st.crypto_seconds) ? fmt(st.crypto_seconds) +
      " s in encryption" : "");
    setText("alert-count", String(d.alerts.length));
    setText("psi", d.psi ? fmt(d.psi.intersection_size) : "\u2013");
    setText("psi-sub", d.psi && isNum(d.psi.input_rows) ? "of " + fmt(d.psi.input_rows) +
      " input rows" : "");
    const banner = $("error");
    const error = st.error || (run.phase === "failed" ? "the job failed" : "");
    banner.hidden = !error;
    banner.textContent = error ? "Job failed: " + error : "";
    drawTable($("latest").tBodies[0], Object.keys(d.metrics).sort().map((k) => ({
      attrs: { "data-metric": k },
      cells: [{ th: true, text: k }, { text: fmt(d.metrics[k]), attrs: { "data-value":
        d.metrics[k] } }] })));
    drawCharts(d);
    const peersStatus = st.peers || {};
    const health = d.health || {};
    const peers = [...new Set(Object.keys(peersStatus).concat(Object.keys(health)))].sort();
    drawTable($("health").tBodies[0], peers.map((p) => {
      const s = peersStatus[p] || {}, h = health[p];
      const state = h ? h.state : "n/a (no node)";
      const seen = [s.last_seen, h ? h.last_seen : null].filter(isNum);
      const rtt = h && isNum(h.latency_ms) ? h.latency_ms : s.latency_ms;
      return { attrs: { "data-peer": p }, cells: [{ th: true, text: p },
        { text: state + (h && h.reason ? " (" + h.reason + ")" : ""),
          attrs: { "class": "state-" + (h ? h.state : "unknown") } },
        { text: ago(seen.length ? Math.max(...seen) : null, now) },
        { text: isNum(rtt) ? fmt(rtt) + " ms" : "\u2013", attrs: { "data-latency": isNum(rtt) ?
          String(rtt) : "" } },
        { text: bytes(s.bytes_sent) }, { text: bytes(s.bytes_received) }] };
    }));
    if (!peers.length) drawTable($("health").tBodies[0], [{ cells: [{ text: "no peers known",
      attrs: { colspan: 6, "class": "muted" } }] }]);
    const alerts = $("alerts");
    clear(alerts);
    for (const a of d.alerts.slice(-50).reverse()) {
      const li = el("li", { "data-alert": a.alert || "" });
      li.appendChild(el("b", {}, a.alert || "alert"));
      li.appendChild(document.createTextNode((a.message || "") + " (" + ago(a.t, now) + ")"));
      alerts.appendChild(li);
    }
    if (!d.alerts.length) alerts.appendChild(el("li", { "class": "muted" }, "no alerts"));
    const names = metricNames(d.rounds);
    const head = $("rounds").tHead;
    clear(head);
    const hr = el("tr");
    for (const h of ["round"].concat(names, ["seconds", "sent", "received", "dropped"])) {
      hr.appendChild(el("th", {}, h));
    }
    head.appendChild(hr);
    drawTable($("rounds").tBodies[0], d.rounds.slice(-10).reverse().map((r) => ({
      attrs: { "data-round": r.round },
      cells: [{ th: true, text: String(r.round) }].concat(
        names.map((n) => ({ text: fmt((r.metrics || {})[n]) })),
        [{ text: fmt(r.seconds) }, { text: bytes(r.bytes_sent) }, { text: bytes(r.bytes_received) },
          { text: (r.dropped || []).join(", ") || "\u2013" }]) })));
    const runs = $("runs");
    clear(runs);
    for (const r of d.runs) {
      const li = el("li");
      const a = el("a", { href: "/?job=" + encodeURIComponent(r.job_id) }, r.job_id + " / " +
        r.party);
      li.appendChild(a);
      li.appendChild(document.createTextNode(" \u00b7 updated " + ago(r.updated, now) +
        (r.job_id === run.job_id && r.party === run.party ? " \u00b7 shown" : "")));
      runs.appendChild(li);
    }
    setText("updated", "status written " + ago(isNum(st.updated) ? st.updated : run.updated, now));
  }

  async function poll() {
    const conn = $("conn");
    try {
      const reply = await fetch(API, { credentials: "same-origin", cache: "no-store",
        headers: { "Accept": "application/json" } });
      if (!reply.ok) {
        throw new Error("HTTP " + reply.status + (reply.status === 401 ?
          ": open the dashboard URL with its token again" : ""));
      }
      render(await reply.json());
      conn.className = "conn";
      conn.textContent = "live \u00b7 " + new Date().toLocaleTimeString();
    } catch (err) {
      conn.className = "conn lost";
      conn.textContent = "not updating: " + err.message;
    } finally {
      setTimeout(poll, POLL_MS);
    }
  }
  poll();
})();
"""

SCRIPT = _TEMPLATE.replace("__POLL_MS__", str(round(POLL_SECONDS * 1000)))
