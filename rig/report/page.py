"""The run's report as one self-contained HTML file (runs/<id>/report.html): no network, no
server, no script; it opens from a CI artifact. Sections, each with an id: `changes` (against the
previous comparable run), `matrix` (board x mode x case, coloured by verdict, each cell's status
from its history), `trends` (SVG plots per board, regressions), `environment`, `cells` (every
cell with its reason and links to its transcript, broker log and capture) and `history`."""

from __future__ import annotations

import datetime as dt
import json
import os
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rig.config import MODES, WEB_MODES
from rig.report.history import Key, Run
from rig.report.plots import chart, run_label
from rig.report.trends import (
    FLAKY_FLIPS,
    METRICS,
    STATUSES,
    Regression,
    Status,
    changes,
    rule,
    verdict,
)

_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:3px 6px;
font-size:13px;vertical-align:top} th{background:#f3f3f3;text-align:left}
td.pass{background:#d9f2d9} td.fail{background:#f8d0d0} td.skip{background:#e6e6e6}
td.none{background:#fff;color:#aaa}
.badge{display:inline-block;border-radius:3px;padding:0 4px;font-size:11px;margin-left:4px;
color:#fff} .b-new-failure{background:#c00} .b-fixed{background:#1f6fb4}
.b-flaky{background:#e08000} .b-still-failing{background:#700} .b-passing{display:none}
.b-skipped{background:#888}
.reason{color:#555;font-size:12px} .summary span{margin-right:1.2em}
.regression{color:#c00;font-weight:bold} figure{margin:.5em 0;display:inline-block}
"""


_SHOWN: tuple[Status, ...] = ("new failure", "fixed", "flaky", "still failing")
_MODE_ORDER = (*MODES, *WEB_MODES)
_REASON_CHARS = 240  # in the changes list; the cells table has the whole reason


def _badge(status: Status) -> str:
    return f'<span class="badge b-{status.replace(" ", "-")}">{escape(status)}</span>'


def _link(run_dir: Path, page_dir: Path, target: str, text: str) -> str:
    """A link to a file of the run (a path relative to the run directory, or an absolute one
    inside it), relative to where the page is; nothing for anything else (a URL, a path that
    leaves the run directory)."""
    if not target or "://" in target or ":" in target.split("/", 1)[0]:
        return ""
    path = Path(target)
    if path.is_absolute():
        try:
            path = path.relative_to(run_dir)
        except ValueError:  # recorded on the runner (a capture): the file in this copy
            if not (run_dir / path.name).exists():
                return ""
            path = Path(path.name)
    inside = _inside(run_dir, path)
    if inside is None:
        return ""
    href = os.path.relpath(run_dir / inside, page_dir)
    return f'<a href="{escape(quote(href), quote=True)}">{escape(text)}</a>'


def _inside(run_dir: Path, path: Path) -> Path | None:
    """`path` (relative to the run directory) without `..` and `.`, or None when it leaves the
    run directory, by `..` or through a symlink, or is the directory itself."""
    plain = Path(os.path.normpath(path))
    if plain.is_absolute() or not plain.parts or plain.parts[0] == "..":
        return None
    if not (run_dir / plain).resolve().is_relative_to(run_dir.resolve()):
        return None
    return plain


def _counts(run: Run) -> dict[str, int]:
    """A run's cells by verdict: pass, fail, skip."""
    return {v: sum(1 for c in run.cells if verdict(c) == v) for v in ("pass", "fail", "skip")}


def _name(key: Key) -> str:
    return ".".join(key)


def render(current: Run, history: list[Run], skipped: list[str],
           statuses: dict[Key, Status], flagged: list[Regression], threshold: float,
           page_dir: Path, unjudged: str = "") -> str:
    """The page; `page_dir` is where it is written (its links are relative to it);
    `unjudged`: why the run's times were not judged for regressions (a busy runner)."""
    grouped = changes(statuses)
    previous = history[-1] if history else None
    counts = _counts(current)
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>HIL run "
             f"{escape(current.id)}</title><style>{_CSS}</style></head><body>",
             f"<h1>HIL run {escape(current.id)}</h1>",
             '<p class="summary">'
             f'<span id="count-pass">{counts["pass"]} passed</span>'
             f'<span id="count-fail">{counts["fail"]} failed</span>'
             f'<span id="count-skip">{counts["skip"]} skipped</span>'
             f"<span>{len(current.cells)} cells</span></p>"]
    parts += _changes(current, previous, grouped, flagged, threshold, unjudged)
    parts += _matrix(current, statuses)
    parts += _trends(current, history, flagged, threshold)
    parts += _environment(current)
    parts += _cells(current, statuses, page_dir)
    parts += _history(current, history, skipped)
    made = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<p class=\"reason\">made by hil report, {made}</p></body></html>")
    return "\n".join(parts)


def _changes(current: Run, previous: Run | None, grouped: dict[Status, list[Key]],
             flagged: list[Regression], threshold: float, unjudged: str) -> list[str]:
    out = ['<section id="changes"><h2>What changed</h2>']
    if previous is None:
        out.append("<p>No earlier comparable run: every cell is reported as it is.</p>")
    else:
        out.append(f"<p>Against run {escape(previous.id)}, the previous comparable run; a "
                   f"cell is flaky when its verdict changed {FLAKY_FLIPS} times or more over "
                   "the comparable runs read.</p>")
    for status in _SHOWN:
        keys = grouped[status]
        out.append(f'<h3 id="{status.replace(" ", "-")}">{escape(status)}: {len(keys)}</h3>')
        if keys:
            out.append("<ul>")
            for key in keys:
                cell = current.cell(key) or {}
                text = str(cell.get("reason", ""))
                if len(text) > _REASON_CHARS:
                    text = text[:_REASON_CHARS - 3] + "..."
                reason = f' <span class="reason">{escape(text)}</span>' if text else ""
                out.append(f"<li><a href=\"#cell-{escape(_name(key))}\">{escape(_name(key))}"
                           f"</a>{reason}</li>")
            out.append("</ul>")
    out.append(f'<h3 id="regressions">regressions: {len(flagged)}</h3>')
    if flagged:
        out.append("<ul>" + "".join(f'<li class="regression">{escape(str(r))}</li>'
                                    for r in flagged) + "</ul>")
    if unjudged:
        out.append(f'<p class="regression" id="unjudged">timings not judged for regressions: '
                   f"{escape(unjudged)}</p>")
    out.append(f'<p class="reason" id="regression-rule">{escape(rule(threshold))}</p>')
    out.append("</section>")
    return out


def _matrix(current: Run, statuses: dict[Key, Status]) -> list[str]:
    out = ['<section id="matrix"><h2>Matrix</h2>']
    boards = sorted({c["board"] for c in current.cells})
    for board in boards:
        cells = [c for c in current.cells if c["board"] == board]
        seen = list(dict.fromkeys(c["mode"] for c in cells))  # the rig's order, then others
        modes = [m for m in _MODE_ORDER if m in seen] + [m for m in seen
                                                          if m not in _MODE_ORDER]
        cases = list(dict.fromkeys(c["case"] for c in cells))
        out.append(f'<h3>{escape(board)}</h3><table class="matrix" data-board="'
                   f'{escape(board)}"><tr><th>case</th>' +
                   "".join(f"<th>{escape(m)}</th>" for m in modes) + "</tr>")
        for case in cases:
            row = [f"<tr><th>{escape(case)}</th>"]
            for mode in modes:
                key = (board, mode, case)
                cell = current.cell(key)
                if cell is None:
                    row.append('<td class="none">-</td>')
                    continue
                v = verdict(cell)
                status = statuses.get(key, "passing")
                title = escape(str(cell.get("reason") or cell["verdict"]), quote=True)
                row.append(f'<td class="{v}" title="{title}" data-status="{escape(status)}">'
                           f'<a href="#cell-{escape(_name(key))}">{escape(cell["verdict"])}</a>'
                           f"{_badge(status)}</td>")
            out.append("".join(row) + "</tr>")
        out.append("</table>")
    out.append("</section>")
    return out


def _trends(current: Run, history: list[Run], flagged: list[Regression],
            threshold: float) -> list[str]:
    runs = [*history, current]
    out = ['<section id="trends"><h2>Trends</h2>',
           f"<p>The last {len(runs)} comparable run(s), oldest first: "
           + ", ".join(escape(run_label(r)) for r in runs) + ".</p>"]
    boards = sorted({c["board"] for c in current.cells} - {"host", "none"})
    drawn = 0
    for board in boards:
        for metric in METRICS:
            svg = chart(runs, board, metric, flagged)
            if svg:
                drawn += 1
                out.append(f'<figure class="plot" data-board="{escape(board)}" '
                           f'data-metric="{metric}">{svg}</figure>')
    if not drawn:
        out.append("<p>No passing board cell with a time yet.</p>")
    out.append("</section>")
    return out


_ENV_ROWS = {"rig": "rig", "mosquitto": "Mosquitto", "openssl": "OpenSSL",
             "mbedtls": "mbedTLS (boards)"}
_BOARD_FIELDS = ("kind", "firmware", "firmware_sha256", "mac", "location", "port",
                 "serial_number", "place", "exporter")


def _text(value: object) -> str:
    """An environment value as text, whatever a results.json holds there: a text as it is,
    nothing for null, numbers and booleans as JSON writes them, lists and tables item by item."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return json.dumps(value) if isinstance(value, bool | int | float) else str(value)


def _rig_text(rig: object) -> str:
    if not isinstance(rig, dict):
        return _text(rig)
    revision = _text(rig.get("revision"))
    return f"hil-rig {_text(rig.get('version')) or '?'}" + (f", git {revision}" if revision
                                                            else "")


def _environment(current: Run) -> list[str]:
    env = current.data.get("environment")
    out = ['<section id="environment"><h2>Environment</h2>']
    if not isinstance(env, dict) or not env:
        out.append(f"<p>Not recorded (results.json schema {current.schema}).</p></section>")
        return out
    rows = [("rig", _rig_text(env.get("rig")))] + [
        (title, _text(env.get(key))) for key, title in _ENV_ROWS.items() if key != "rig"]
    boards = env.get("boards")
    rows += [(str(k), _text(v)) for k, v in env.items() if k not in _ENV_ROWS and (
        k != "boards" or not isinstance(boards, dict))]  # a newer rig's, or odd boards
    out.append("<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                   for k, v in rows) + "</table>")
    if isinstance(boards, dict) and boards:
        out += _boards(boards)
    out.append("</section>")
    return out


def _boards(boards: dict[str, Any]) -> list[str]:
    """The environment's boards, a row each (a board recorded as no table: its value)."""
    out = ["<table><tr><th>board</th>" + "".join(
        f"<th>{escape(f.replace('_', ' '))}</th>" for f in _BOARD_FIELDS) + "</tr>"]
    for name, b in sorted(boards.items()):
        cells = ("".join(f"<td>{escape(_text(b.get(f)))}</td>" for f in _BOARD_FIELDS)
                 if isinstance(b, dict) else
                 f'<td colspan="{len(_BOARD_FIELDS)}">{escape(_text(b))}</td>')
        out.append(f"<tr><th>{escape(str(name))}</th>{cells}</tr>")
    out.append("</table>")
    return out


def _cells(current: Run, statuses: dict[Key, Status], page_dir: Path) -> list[str]:
    out = ['<section id="cells"><h2>Cells</h2><table><tr><th>cell</th><th>verdict</th>'
           "<th>status</th><th>cipher suite</th><th>handshake</th><th>reason</th>"
           "<th>evidence</th></tr>"]
    for c in current.cells:
        key = (c["board"], c["mode"], c["case"])
        props = c.get("properties", {})
        links = [_link(current.path, page_dir, str(props.get("transcript", "")), "transcript"),
                 _link(current.path, page_dir, str(props.get("broker_log", "")),
                       "broker log (its mode's)")]
        capture = str(props.get("capture", ""))
        if capture.endswith(".pcapng"):
            lost = props.get("capture_lost")
            links.append(_link(current.path, page_dir, capture,
                               "capture (incomplete)" if lost else "capture"))
        hs = c.get("handshake_ms")
        out.append(f'<tr id="cell-{escape(_name(key))}"><td>{escape(_name(key))}</td>'
                   f'<td class="{verdict(c)}">{escape(c["verdict"])}</td>'
                   f"<td>{escape(statuses.get(key, ''))}</td>"
                   f"<td>{escape(str(c.get('cipher_suite', '')))}</td>"
                   f"<td>{'' if hs is None else f'{hs:g} ms'}</td>"
                   f'<td class="reason">{escape(str(c.get("reason", "")))}</td>'
                   f"<td>{' '.join(x for x in links if x)}</td></tr>")
    out.append("</table></section>")
    return out


def _history(current: Run, history: list[Run], skipped: list[str]) -> list[str]:
    out = ['<section id="history"><h2>History</h2><table><tr><th>run</th><th>passed</th>'
           "<th>failed</th><th>skipped</th><th>from</th></tr>"]
    for r in [*history, current]:
        n = _counts(r)
        out.append(f"<tr><td>{escape(r.id)}</td><td>{n['pass']}</td><td>{n['fail']}</td>"
                   f"<td>{n['skip']}</td><td>{escape(str(r.path))}</td></tr>")
    out.append("</table>")
    if skipped:
        out.append("<p>Skipped:</p><ul>" + "".join(f"<li>{escape(s)}</li>" for s in skipped)
                   + "</ul>")
    out.append("</section>")
    return out


__all__ = ["STATUSES", "render"]
