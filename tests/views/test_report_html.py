"""`bnbench compare --format html` (and `Comparison.report`): one self-contained page that parses, says the
verdict, shows the json's numbers as the table rounds them, holds its figure inline and fetches nothing; in the
slow tier, Debian's headless Chromium opens it offline with no console error and no network request, at a
desktop's and a phone's width (no page overflow at 400 px)."""

import html
import json
import math
import shutil
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import yaml
from PIL import Image
from support.cli_calls import ok, refused
from support.configs import tiny_config
from support.run_files import only_run

import bnbench
from bnbench.analysis.columns import SPEEDS
from bnbench.views import report_html
from bnbench.views.report_html import NO_PLOT, NO_SPEED
from bnbench.views.speed_plot import speeds

URL_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "poster", "data", "action"}


class Page(HTMLParser):
    """What the tests read of a page: every start tag with its attributes, the text of each table cell (its
    lines), each table row's cells, the text of list items, and the rows inside <details>."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.cells, self.items, self.details_rows, self.styles, self.rows = [], [], [], 0, [], []
        self._cell, self._item, self._details, self._style = None, None, 0, False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = [""]
        elif tag == "br" and self._cell is not None:
            self._cell.append("")
        elif tag == "li":
            self._item = ""
        elif tag == "details":
            self._details += 1
        elif tag == "tr":
            self.rows.append([])
            self.details_rows += bool(self._details)
        self._style = tag == "style"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell)
            self.rows[-1].append(" ".join(self._cell))
            self._cell = None
        elif tag == "li" and self._item is not None:
            self.items.append(self._item)
            self._item = None
        elif tag == "details":
            self._details -= 1
        self._style = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[-1] += data
        if self._item is not None:
            self._item += data
        if self._style:
            self.styles.append(data)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished digits run: batchnorm against plain, 3 seeds."""
    out = tmp_path_factory.mktemp("report") / "results"
    config = out.parent / "digits.yaml"
    config.write_text(yaml.safe_dump(tiny_config("report", [0, 1, 2])))
    ok("run", config, "--out", out, "-q")
    return only_run(out, "report")


@pytest.fixture(scope="module")
def page(run, tmp_path_factory):
    """The report written with --output: its path and text."""
    path = tmp_path_factory.mktemp("page") / "report.html"
    ok("compare", run, "--format", "html", "--output", path)
    return path, path.read_text()


def test_the_page_says_the_verdict_and_the_jsons_numbers_as_the_table_rounds_them(run, page):
    parsed = Page(page[1])
    rows = json.loads(ok("compare", run, "--format", "json"))
    verdicts = [r["verdict"] for r in rows if r["verdict"]]
    assert verdicts and all(v in parsed.items for v in verdicts)
    cells = [line for cell in parsed.cells for line in cell]
    for r in (r for r in rows if not r["baseline"]):
        assert f"Δ {r['test_acc_delta']:+.2f} ({r['pairs']} pairs)" in cells
        assert f"[{r['test_acc_ci_low']:+.2f}, {r['test_acc_ci_high']:+.2f}]" in cells
    for r in rows:
        assert f"{r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f}" in cells
    assert "Mean ± std over seeds at epoch" in page[1]  # the table's legend


def test_the_page_holds_its_figure_and_fetches_nothing(page):
    parsed = Page(page[1])
    tags = [tag for tag, _ in parsed.tags]
    assert tags.count("svg") == 2 and tags.index("svg") > tags.index("table")  # the curves and the speed figure
    for tag, attributes in parsed.tags:
        for name, value in attributes.items():
            if name in URL_ATTRIBUTES and value:
                assert not value.startswith(("http:", "https:", "//")), (tag, name, value)
        assert not (tag == "script" and "src" in attributes)
        assert tag not in ("link", "iframe", "object", "embed")
    assert "url(" not in "".join(parsed.styles) and "@import" not in "".join(parsed.styles)
    assert len(page[1].encode()) < 1_500_000


def test_the_per_seed_values_are_folded_away_a_row_each(run, page):
    parsed = Page(page[1])
    seeds = json.loads(ok("compare", run, "--format", "json", "--per-seed"))
    assert parsed.details_rows == len(seeds) + 1  # the header's row too
    value = next(r["value"] for r in seeds if r["measure"] == "test_acc")
    assert [f"{value:.6g}"] in parsed.cells


def test_without_output_the_page_goes_to_stdout_as_the_api_returns_it(run, page, tmp_path):
    printed = ok("compare", run, "--format", "html")
    assert printed == page[1] and printed.startswith("<!DOCTYPE html>")
    path = tmp_path / "api.html"
    assert bnbench.compare(run).report(path) == page[1] == path.read_text()


def test_without_matplotlib_the_page_says_so_in_one_line(run, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    text = bnbench.compare(run).report()
    assert text.count(html.escape(NO_PLOT)) == 1 and "<svg" not in text


def test_a_page_of_many_runs_draws_the_first_max_runs(run, monkeypatch):
    monkeypatch.setattr(report_html, "MAX_RUNS", 0)
    text = bnbench.compare(run).report()
    assert text.count(html.escape(report_html.UNDRAWN)) == 1 and "<svg" not in text


def test_windows_have_no_html_page(run):
    assert refused("compare", run, "--format", "html", "--windows") == (
        "error: --windows: --format html has no windows table; use --format table or markdown"
    )


def test_the_speed_section_draws_each_speedup_with_its_interval(run, page):
    text = page[1]
    speed = text[text.index("<h3>Speed</h3>") : text.index("</figure>", text.index("<h3>Speed</h3>"))]
    assert "<svg" in speed
    rows = [r for r in json.loads(ok("compare", run, "--format", "json")) if not r["baseline"]]
    for name, measure in SPEEDS.items():
        drawn = speeds(bnbench.compare(run).runs[0]).get(measure.label)
        values = [r[f"{name}_speedup"] for r in rows if r[f"{name}_speedup"] is not None]
        if not values:
            assert drawn is None
            continue
        assert f"{measure.label} (1: as fast as the baseline)" in speed  # the panel's title, as SVG text
        assert drawn.speedup.tolist() == values
        for stat in ("speedup_high", "ci_low", "ci_high"):
            assert drawn[stat].tolist() == [r[f"{name}_{stat}"] for r in rows], stat


def test_a_speed_measure_without_numbers_is_left_out_with_a_note(run):
    c = bnbench.compare(run).runs[0]
    c.table["steps_acc_speedup"] = math.nan  # as when no variant reaches the target
    section = report_html._speed(c)
    assert section.count("<svg") == 1 and "half-run loss (1: as fast" in section
    assert "half-run test acc (1:" not in section
    assert html.escape(report_html.NO_SPEED.format("half-run test acc")) in section
    c.table["steps_speedup"] = math.nan
    section = report_html._speed(c)
    assert "<svg" not in section and html.escape(NO_SPEED.format("half-run loss, half-run test acc")) in section


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A digits run made with probes every 20 steps (as tests/engines/test_probes.py makes one)."""
    out = tmp_path_factory.mktemp("probed") / "results"
    config = out.parent / "probe.yaml"
    training = {"epochs": 2, "batch_size": 32, "log_every": 10, "eval_every": 20, "probe_every": 20}
    config.write_text(yaml.safe_dump(tiny_config("probe", [0, 1, 2], training=training)))
    ok("run", config, "--out", out, "-q")
    return only_run(out, "probe")


def test_a_probed_runs_page_holds_the_probe_table_of_compare_probes(probed):
    text = bnbench.compare(probed).report()
    assert text.count("<h3>Probes</h3>") == 1
    section = text[text.index("<h3>Probes</h3>") : text.index("<details>")]
    assert section.count("<svg") == 1  # the probe figure
    printed = ok("compare", probed, "--probes").splitlines()
    table = printed[printed.index("") + 1 :]  # after the caption and its blank line
    shown = [" ".join(cell for cell in row if cell) for row in Page(section).rows]
    assert shown == [" ".join(line.split()) for line in table if line.strip()]
    assert any("update_ratio" in line for line in shown) and len(shown) > 20


def test_a_run_without_probes_has_no_probe_section(page):
    assert "<h3>Probes</h3>" not in page[1] and "probes.csv" not in page[1]


# ---- a real browser (slow tier) ------------------------------------------------------------------------------


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with every host unresolvable (a fetch fails and is logged), console messages on stderr."""
    command = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    command += ["--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def page_requests(net_log) -> list[str]:
    """The URLs the page (not the browser's own services) asked the network for: the requests whose site is the
    file:// page."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and "site=file://" in str(e["params"].get("site_for_cookies", ""))
    ]


# Layout facts in CSS px, as the browser laid the page out: its window's width, how far it overflows it, its height,
# the right edges of the figures and of the tables' boxes, and where the verdict, the first table and the first
# figure start; sent to the frame's parent (a frame may post to its parent across file:// origins).
LAYOUT = """
const at = e => e.getBoundingClientRect().top + scrollY, right = es => Math.max(...[...es].map(e =>
  e.getBoundingClientRect().right)), figures = document.querySelectorAll('figure svg');
parent.postMessage(JSON.stringify({width: innerWidth, overflow: document.documentElement.scrollWidth - innerWidth,
  height: document.documentElement.scrollHeight, figures: figures.length, figures_right: right(figures),
  figure_height: figures[0].getBoundingClientRect().height, boxes_right: right(document.querySelectorAll('.scroll')),
  verdict_top: at(document.querySelector('ul.verdict')), table_top: at(document.querySelector('table')),
  figure_top: at(figures[0])}), '*');
"""
# Headless Chromium lays a window narrower than 500 px out at 500 (its smallest window): a phone's width is a frame
# of that width inside a wider window.
FRAME = (
    '<!DOCTYPE html><body style="margin:0"><iframe src="{src}" style="border:0;width:{width}px;height:{height}px">'
    "</iframe><script>addEventListener('message', e => document.body.dataset.layout = e.data)</script></body>"
)
SETTLED = ["--run-all-compositor-stages-before-draw", "--virtual-time-budget=5000"]  # laid out before it is read


def framed(tmp_path, src, width: int, height: int, *args: str) -> subprocess.CompletedProcess:
    """`src` in a frame `width` x `height` px, in a window wide enough for it."""
    frame = tmp_path / f"frame-{width}-{height}.html"
    frame.write_text(FRAME.format(src=src.as_uri(), width=width, height=height))
    return chromium(f"--window-size={max(width, 500)},{height}", *SETTLED, *args, frame.as_uri())


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium not installed: apt-get install -y --no-install-recommends chromium",
)
def test_chromium_shows_the_page_offline_at_a_desktops_and_a_phones_width(page, tmp_path):
    path, text = page
    probe = tmp_path / "probe.html"  # the page, reporting its layout as the browser laid it out
    probe.write_text(text.replace("</body>", f"<script>{LAYOUT}</script></body>"))
    heights = {}
    for width in (1280, 400):
        shot, net_log = tmp_path / f"{width}.png", tmp_path / f"{width}.json"
        shown = chromium(
            f"--screenshot={shot}", f"--window-size={width},2000", f"--log-net-log={net_log}", path.as_uri()
        )
        assert shown.returncode == 0, shown.stderr
        console = [line for line in shown.stderr.splitlines() if "CONSOLE" in line or "ERR_" in line]
        assert not console, console
        assert page_requests(net_log) == []
        with Image.open(shot) as image:
            assert image.size == (width, 2000)
            assert len(image.convert("L").getcolors(256)) > 16  # text and curves, not a blank page
        dom = framed(tmp_path, probe, width, 2000, "--dump-dom")
        assert 'data-layout="' in dom.stdout, dom.stderr  # else the script failed: its error is on stderr
        layout = json.loads(html.unescape(dom.stdout.split('data-layout="')[1].split('"')[0]))
        assert layout["width"] == width, layout
        assert layout["overflow"] <= 0, f"the page is {layout['overflow']} px wider than a {width} px window"
        assert 0 < layout["figures_right"] <= width and 0 < layout["boxes_right"] <= width, layout
        assert layout["figures"] == 2 and layout["figure_height"] > 100, layout  # curves and speed, drawn
        assert layout["verdict_top"] < layout["table_top"] < layout["figure_top"], layout  # the answer first
        heights[width] = layout["height"]
    assert heights[400] > heights[1280], heights  # at a phone's width the page flows down, not sideways
    for width, height in heights.items():  # the whole page, as a screenshot as tall as it
        shot = tmp_path / f"whole-{width}.png"
        assert framed(tmp_path, path, width, height, f"--screenshot={shot}").returncode == 0
        with Image.open(shot) as image:
            assert image.size == (max(width, 500), height)
            bottom = image.convert("L").crop((0, height * 3 // 4, width, height))
            assert len(bottom.getcolors(256)) > 4  # its last quarter drawn too (no blank below the fold)
