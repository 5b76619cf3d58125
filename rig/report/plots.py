"""The report's trend plots: one line chart per board and metric, a line per mode over the
runs, as static SVG put straight into the page.

pygal draws them: SVG is its own output format (not a backend of a raster library), it is pure
Python with no dependencies (well under 1 MB installed, against tens of MB for matplotlib and
NumPy), its charts need no JavaScript to be read (pygal's optional tooltip script is never
loaded, and the small config script it writes into each chart is removed here), and it has been
released with a stable API since 2012 (3.x today)."""

from __future__ import annotations

import re

import pygal
from pygal.style import Style

from rig.report.history import Run
from rig.report.trends import METRICS, Metric, Regression, series

_STYLE = Style(background="white", plot_background="white", font_family="sans-serif",
               colors=("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"),
               title_font_size=14, label_font_size=10, legend_font_size=11)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def run_label(run: Run) -> str:
    """A run on the x axis: its start (MM-DD HH:MM:SS, UTC) from the run id."""
    m = re.match(r"^\d{4}(\d\d)(\d\d)-(\d\d)(\d\d)(\d\d)", run.id)
    return (f"{m.group(1)}-{m.group(2)} {m.group(3)}:{m.group(4)}:{m.group(5)}" if m
            else run.id[:16])


def chart(runs: list[Run], board: str, metric: Metric,
          flagged: list[Regression]) -> str | None:
    """The SVG of `board`'s `metric` over `runs` (oldest first), or None when no run has a
    value for it."""
    data = {mode: values for (b, mode), values in series(runs, metric).items() if b == board}
    if not any(v is not None for values in data.values() for v in values):
        return None
    marks = [r.mode for r in flagged if r.board == board and r.metric == metric]
    title = f"{board}: {METRICS[metric]}" + (
        f"  REGRESSION in {', '.join(marks)}" if marks else "")
    c = pygal.Line(js=[], disable_xml_declaration=True, width=720, height=280,
                   explicit_size=True, style=_STYLE, title=title, x_label_rotation=30,
                   show_minor_x_labels=True, allow_interruptions=True, dots_size=3,
                   legend_at_bottom=True, truncate_legend=-1)
    c.x_labels = [run_label(r) for r in runs]
    for mode, values in sorted(data.items()):
        c.add(mode + (" (regression)" if mode in marks else ""), values)
    svg = str(c.render(is_unicode=True))
    return _COMMENT.sub("", _SCRIPT.sub("", svg))
