"""Every link and image in README.md and docs/*.md resolves: the file exists, and an #anchor names a heading."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation but hyphens dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(page: Path) -> list[str]:
    text = re.sub(r"<!-- output: .*?<!-- /output -->", "", FENCE.sub("", page.read_text()), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_doc_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    assert {p for p in PAGES[1:]} <= linked, {p.name for p in PAGES[1:]} - {p.name for p in linked}


def test_readme_fits_a_few_screens():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_every_repository_path_named_exists():
    """A test, benchmark, module or docs file the pages name (outside shown outputs) is where they say."""
    named = re.compile(r"(?<![\w/<>.-])((?:tests|benchmarks|bnbench|docs|configs|\.ci)/[\w./-]*\w)")
    missing = set()
    for page in PAGES:
        text = re.sub(r"<!-- output: .*?<!-- /output -->", "", page.read_text(), flags=re.S)
        missing |= {f"{page.name}: {p}" for p in named.findall(text) if not (ROOT / p).exists()}
    assert not missing, sorted(missing)


def test_architecture_names_the_code_as_it_stands():
    """docs/architecture.md names every package of bnbench/, and every module it names exists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = {p.name for p in (ROOT / "bnbench").iterdir() if (p / "__init__.py").exists()}
    assert {p for p in packages if f"bnbench/{p}/" not in text} == set()
    modules = {p.name for p in (ROOT / "bnbench").rglob("*.py")}
    assert {m for m in re.findall(r"`(\w+\.py)`", text) if m not in modules} == set()


def test_ci_runs_the_readmes_test_commands():
    """.ci/run runs the whole suite with the command the README gives for it, and the README's style check."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    full = re.search(r"^(python -m pytest -q -m .+?)\s+# the whole suite", readme, re.M).group(1)
    assert full in ci
    assert "ruff check ." in ci and "ruff format --check ." in ci


def test_architecture_import_table_is_the_code():
    """The table of docs/architecture.md lists, per package, the bnbench packages its modules import."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = {row[0]: set(re.findall(r"`(\w+)`", row[1])) for row in re.findall(r"^\| `(\w+)` \| (.*) \|$", text, re.M)}
    found = {}
    for package in table:
        imports = re.findall(
            r"^\s*(?:from|import) bnbench\.(\w+)",
            "\n".join(p.read_text() for p in (ROOT / "bnbench" / package).rglob("*.py")),
            re.M,
        )
        found[package] = set(imports) - {package, "errors"}
    wrong = {p: f"the code: {sorted(found[p])}, the table: {sorted(table[p])}" for p in table if found[p] != table[p]}
    assert not wrong, wrong
