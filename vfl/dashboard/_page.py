"""The dashboard's one HTML page: self-contained (inline CSS and JS, no CDN, works offline).

The page holds no data: its script polls ``/api/status`` every 2 s and draws everything with DOM
calls (``textContent``, never ``innerHTML``, so values from run files cannot inject markup), the
charts as inline SVG. The Content-Security-Policy allows exactly this script and this style by
their SHA-256 hashes (CSP Level 2, https://www.w3.org/TR/CSP2/#script-src-hash-usage).
"""

from __future__ import annotations

import base64
import hashlib

from vfl.dashboard._script import POLL_SECONDS
from vfl.dashboard._script import SCRIPT as _SCRIPT

__all__ = ["PAGE_HTML", "PAGE_CSP", "API_CSP", "POLL_SECONDS"]

_STYLE = """
:root { color-scheme: light; --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f8fafc;
  --card: #ffffff; --up: #15803d; --down: #b91c1c; --warn: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; justify-content: space-between; align-items: baseline;
  padding: 14px 24px; background: #0f172a; color: #f8fafc; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; }
header h1 span { font-weight: 400; color: #cbd5e1; margin-left: 8px; }
.conn { font-size: 12px; color: #86efac; }
.conn.lost { color: #fca5a5; }
main { padding: 16px 24px; max-width: 1280px; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted);
  margin: 18px 0 8px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; }
.tile .label { font-size: 12px; color: var(--muted); }
.tile .value { font-size: 20px; font-weight: 600; margin-top: 2px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; }
.tile .sub { font-size: 12px; color: var(--muted); }
.tile progress { width: 100%; height: 6px; margin-top: 6px; }
.phase-done { color: var(--up); } .phase-failed { color: var(--down); }
.phase-train, .phase-psi, .phase-evaluate { color: #1d4ed8; }
.banner { background: #fef2f2; border: 1px solid #fecaca; color: var(--down);
  border-radius: 8px; padding: 10px 12px; margin-bottom: 10px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 10px; }
figure.chart { margin: 0; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; padding: 6px; }
figure.chart svg { width: 100%; height: auto; display: block; }
figure.chart figcaption { font-size: 12px; color: var(--muted); padding: 0 6px 4px; }
svg .title { font-size: 13px; font-weight: 600; fill: var(--fg); }
svg .tick, svg .axis, svg .legend { font-size: 11px; fill: var(--muted); }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .empty { font-size: 12px; fill: var(--muted); }
table { border-collapse: collapse; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 12px; border-bottom: 1px solid var(--line); }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.state-up { color: var(--up); font-weight: 600; }
.state-down { color: var(--down); font-weight: 600; }
.state-unreachable { color: var(--warn); font-weight: 600; }
.state-unknown { color: var(--muted); }
ul.alerts { list-style: none; margin: 0; padding: 0; }
ul.alerts li { background: #fffbeb; border: 1px solid #fde68a; border-radius: 6px;
  padding: 6px 10px; margin-bottom: 6px; }
ul.alerts li b { color: var(--warn); margin-right: 6px; }
.muted { color: var(--muted); }
footer { padding: 8px 24px 20px; font-size: 12px; color: var(--muted); }
"""


def _body() -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vfl party dashboard</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>vfl<span id="job">loading</span></h1><div id="conn" class="conn">connecting</div>
</header>
<main>
<div id="error" class="banner" hidden></div>
<section class="tiles">
<div class="tile"><div class="label">Phase</div><div class="value" id="phase">&ndash;</div></div>
<div class="tile"><div class="label">Round</div><div class="value" id="round">&ndash;</div>
<progress id="progress" max="1"></progress></div>
<div class="tile"><div class="label">Party</div><div class="value" id="party">&ndash;</div>
<div class="sub" id="jobtype"></div></div>
<div class="tile"><div class="label">Privacy &epsilon; spent</div>
<div class="value" id="epsilon">&ndash;</div><div class="sub" id="delta"></div></div>
<div class="tile"><div class="label">Bytes sent</div>
<div class="value" id="bytes">&ndash;</div><div class="sub" id="bytes-sub"></div></div>
<div class="tile"><div class="label">Time in crypto</div>
<div class="value" id="crypto">&ndash;</div><div class="sub" id="crypto-sub"></div></div>
<div class="tile"><div class="label">Alerts</div><div class="value" id="alert-count">0</div></div>
<div class="tile"><div class="label">PSI intersection</div><div class="value" id="psi">&ndash;</div>
<div class="sub" id="psi-sub"></div></div>
</section>
<h2>Latest metrics</h2>
<table id="latest"><tbody></tbody></table>
<h2>Metrics over rounds</h2>
<div id="charts" class="charts"></div>
<h2>Traffic and time per round</h2>
<div id="system-charts" class="charts"></div>
<section class="two">
<div><h2>Party health</h2>
<table id="health"><thead><tr><th>peer</th><th>state</th><th>last seen</th><th>latency</th>
<th>sent</th><th>received</th></tr></thead><tbody></tbody></table></div>
<div><h2>Alerts</h2><ul id="alerts" class="alerts"></ul></div>
</section>
<h2>Recent rounds</h2>
<table id="rounds"><thead></thead><tbody></tbody></table>
<h2>Runs in this work directory</h2>
<ul id="runs"></ul>
</main>
<footer>Read-only view of this party's work directory, refreshed every
{POLL_SECONDS:g} s &middot; <span id="updated"></span></footer>
<script>{_SCRIPT}</script>
</body>
</html>
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


PAGE_HTML = _body().encode()
PAGE_CSP = (
    "default-src 'self'; "
    f"script-src {_sha256(_SCRIPT)}; "
    f"style-src {_sha256(_STYLE)}; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
