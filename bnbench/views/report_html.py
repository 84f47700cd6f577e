"""`bnbench compare --format html`: the comparison as one page to send to a colleague, that opens offline and
from an e-mail attachment. Everything is inside the file (styles inline, figures as inline SVG, no script or
font or image fetched), so that no mail client or air-gapped machine shows a page with holes in it.

The words and numbers are the terminal's (`compare_text`'s grid: verdict lines, cells, caption), escaped; the
figure is `--plot`'s (`plots.page`). Per run, in reading order: what was run, the answer, the table that backs it,
the curves, then the numbers per seed folded away (most readers stop at the answer).
"""

import html
import io
from typing import Optional

import pandas as pd

from bnbench.analysis import Comparison
from bnbench.analysis.per_seed import per_seed
from bnbench.analysis.probes import probe_summary
from bnbench.analysis.summary import describe
from bnbench.errors import BnbenchError
from bnbench.rundir import meta as run_meta
from bnbench.rundir.schema import PROBES
from bnbench.views import probe_report
from bnbench.views.layout import Grid
from bnbench.views.plots import MAX_RUNS

BAND_DPI = 150  # the bands' pixels, sharp enough on a phone and in print
UNDRAWN = f"No figure: a page draws the curves of its first {MAX_RUNS} runs; compare this run alone for its own."
NO_PLOT = "Figures need matplotlib: pip install 'bnbench[plot]'."
NO_SPEED = "No speedup to draw for {}: no variant has a number (none reached the target, or it is undefined)."
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1b1b1b;
  line-height:1.45;margin:0 auto;max-width:1100px;padding:1rem;overflow-wrap:anywhere}
h1{font-size:1.45rem;margin:.2rem 0 1rem}
h2{font-size:1.15rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
h3{font-size:1rem;margin:1.2rem 0 .4rem}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.1rem 1rem;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
ul.verdict{padding-left:1.2rem;margin:.3rem 0}
ul.verdict li{margin:.15rem 0}
.scroll{overflow-x:auto;max-width:100%;border:1px solid #ddd}
table{border-collapse:collapse;font-size:.82rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f3f3f3}
td.number{text-align:right}
p.caption,p.note{font-size:.8rem;color:#444}
figure{margin:.5rem 0}
figure svg{display:block;width:100%;height:auto}
details summary{cursor:pointer;font-weight:600;margin:.6rem 0}
@media print{
  body{max-width:none;padding:0;font-size:10pt}
  .scroll{overflow:visible;border:none}
  table{font-size:7pt}
  th,td{white-space:normal}
  figure,tr{break-inside:avoid}
  section+section{break-before:page}
}
"""
# Folded sections print open: a printed page cannot be clicked.
PRINT_OPEN = "addEventListener('beforeprint',()=>document.querySelectorAll('details').forEach(d=>d.open=true));"


def report(comparisons: list[Comparison], grids: list[Grid], shown: list[str]) -> str:
    """The page of `comparisons`, each with its grid (`compare_text`'s, of the `shown` measures)."""
    names = ", ".join(dict.fromkeys(c.name for c in comparisons))
    sections = "\n".join(_section(c, g, shown, i < MAX_RUNS) for i, (c, g) in enumerate(zip(comparisons, grids)))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>bnbench · {_e(names)}</title>\n<style>{STYLE}</style>\n"
        f"<script>{PRINT_OPEN}</script>\n</head>\n<body>\n"
        f"<h1>bnbench comparison · {_e(names)}</h1>\n{sections}\n</body>\n</html>\n"
    )


def _e(text) -> str:
    return html.escape(str(text))


def _section(c: Comparison, grid: Grid, shown: list[str], drawn: bool) -> str:
    """One run: facts, verdict, table, curves and speed (`drawn`: a page of many runs draws only the first
    MAX_RUNS, as --plot does; each figure is ~0.5 MB and seconds to draw), probes where the run has them, per-seed
    values."""
    return "\n".join(
        [
            f"<section>\n<h2>{_e(grid.title)}</h2>",
            _facts(c),
            "<h3>Verdict</h3>",
            _lines(grid.lead),
            "<h3>Comparison</h3>",
            _table(grid.header, [["<br>".join(_e(line) for line in cell) for cell in row] for row in grid.rows]),
            f'<p class="caption">{_e(grid.caption)}</p>',
            "<h3>Curves</h3>",
            _figure(c) if drawn else f'<p class="note">{_e(UNDRAWN)}</p>',
            _speed(c) if drawn and _can_draw() else "",
            _probes(c, drawn),
            _seeds(c, shown),
            "</section>",
        ]
    )


def _facts(c: Comparison) -> str:
    """What was run, where, on what: enough to find the run folder and judge the numbers."""
    config = c.results.config
    facts = {
        "experiment": c.name,
        "data, model": describe(config),
        "seeds": ", ".join(str(s) for s in config.seeds),
        "epoch compared": c.epochs_compared,
        "run folder": ", ".join(str(p) for p in c.results.sources) or str(c.results.dir),
        "status": c.results.status,
    }
    device = _device(c)
    if device:
        facts["device"] = device
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
    return f'<dl class="facts">{rows}</dl>'


def _device(c: Comparison) -> str:
    """'cpu (Intel Xeon)' as meta.json recorded it; '' where the run did not (or its meta.json is unreadable:
    the report still shows what the rows say)."""
    try:
        fields = run_meta.read(c.results.dir / run_meta.FILE).fields
    except BnbenchError:
        return ""
    if not isinstance(fields.device, str):
        return ""
    name = fields.device_name if isinstance(fields.device_name, str) else ""
    return fields.device + (f" ({name})" if name else "")


def _lines(lines: list[str]) -> str:
    items = "".join(f"<li>{_e(line)}</li>" for line in lines)
    return f'<ul class="verdict">{items}</ul>' if items else '<p class="note">No verdict: nothing was compared.</p>'


def _table(header: list[str], rows: list[list[str]], numeric: frozenset = frozenset()) -> str:
    """A table in its own scrolling box (a phone scrolls the table, not the page); `rows` hold escaped HTML, the
    columns at `numeric` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=number' * (i in numeric)}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _figure(c: Comparison) -> str:
    """The run's curves with their bands (`--plot`'s figure)."""
    if not _can_draw():
        return f'<p class="note">{_e(NO_PLOT)}</p>'
    from bnbench.views.plots import page

    return _svg(page([c]), c.title)


def _can_draw() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _svg(figure, salt: str) -> str:
    """`figure` as inline SVG (text kept as text: small, searchable, sharp in print); its bands (a point per step
    in their outline: MBs of SVG) drawn as an inline PNG; `salt` keeps its ids apart from the page's other
    figures."""
    import matplotlib

    for ax in figure.get_axes():
        for band in ax.collections:
            band.set_rasterized(True)
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        figure.savefig(svg, format="svg", dpi=BAND_DPI, metadata={"Date": None})
    text = svg.getvalue()
    return f"<figure>{text[text.index('<svg') :]}</figure>"  # without the XML declaration and DOCTYPE


def _speed(c: Comparison) -> str:
    """Steps to target as speedups with their intervals (`speed_plot`); the measures without a number named."""
    from bnbench.analysis.columns import SPEEDS
    from bnbench.views.speed_plot import speed_figure, speeds

    drawn = speeds(c)
    missing = [s.label for s in SPEEDS.values() if s.label not in drawn]
    note = f'<p class="note">{_e(NO_SPEED.format(", ".join(missing)))}</p>' if missing else ""
    figure = _svg(speed_figure(c, drawn), f"{c.title} speed") if drawn else ""
    return f"<h3>Speed</h3>\n{figure}{note}"


def _probes(c: Comparison, drawn: bool) -> str:
    """A run made with probes (training.probe_every): `compare --probes`'s tables, cell for cell, and its figure;
    '' for a run without probes.csv."""
    if not (c.results.dir / PROBES.file).is_file():
        return ""
    own = c.baseline in [v.name for v in c.results.config.variants]  # not a baseline of another run
    try:
        summary = probe_summary(c.results.dir, c.baseline if own else None)
    except BnbenchError as e:  # probes.csv with no rows: the page says why, as `compare --probes` does
        return f'<h3>Probes</h3>\n<p class="note">{_e(e)}</p>'
    parts = ["<h3>Probes</h3>", f'<p class="caption">{_e(probe_report.caption(summary))}</p>']
    for point, header, rows in probe_report.tables(summary):
        if point:
            parts.append(f'<p class="note">{_e(point)}</p>')
        numeric = frozenset(range(1, len(header)))
        parts.append(_table(header, [[_e(cell.strip()) for cell in row] for row in rows], numeric))
    if drawn and _can_draw():
        from bnbench.views.probe_plots import probe_figure

        parts.append(_svg(probe_figure(summary), f"{c.title} probes"))
    return "\n".join(parts)


def _seeds(c: Comparison, shown: list[str]) -> str:
    """Every trial's value of each measure: what the means and differences above are made of."""
    rows = per_seed(c, shown)
    header = [*c.points, "variant", "seed", "measure", "value", "counts", "baseline value", "Δ"]
    cells = [
        [
            *(_e(row[p]) for p in c.points),
            _e(row["variant"]),
            _e(row["seed"]),
            _e(row["measure"]),
            _number(row["value"]),
            "yes" if row["ok"] else "no (diverged or unfinished)",
            _number(row["baseline_value"]),
            _number(row["delta"]),
        ]
        for row in rows.to_dict("records")
    ]
    numeric = frozenset(len(c.points) + i for i in (1, 3, 5, 6))
    return (
        f"<details><summary>Per-seed values ({len(cells)} rows)</summary>\n{_table(header, cells, numeric)}\n"
        '<p class="caption">A row per trial and measure at the compared epoch; "counts": whether the trial enters '
        "the means (it finished without diverging); Δ = value − the same seed's baseline value, where both count "
        "(steps to target are compared as ratios: no Δ).</p></details>"
    )


def _number(x: Optional[float]) -> str:
    return "" if pd.isna(x) else f"{x:.6g}"
