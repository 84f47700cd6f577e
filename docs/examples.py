"""The digits-set outputs shown in README.md and docs/*.md, made again by running the shown commands.

Each generated output sits in a Markdown file between `<!-- output: NAME -->` and `<!-- /output -->` (HTML
comments: invisible on GitHub). Every NAME below is made by a *session*: the session's commands run with the
`bnbench` of this checkout in a fresh temporary folder (its files copied in from docs/examples/), as a user would
type them, at a fixed terminal width without colour; a block shows some of those commands (with a `$ ` prompt) and
their output, or only the output, or a file of docs/examples/. Keeping the files here (as Typer keeps docs_src)
means every shown config and factory is the one that ran.

    python docs/examples.py              # check: name every stale output, exit 1 if any
    python docs/examples.py --write      # run again and write every output (and the figures) into the docs
    python docs/examples.py quick sweeps # only these sessions

Comparing (the documented rule): both the shown and the fresh text are normalised first. Run ids
(20261206-180131) become `<run id>`, times of day (2026-12-06T18:01:31+0000) `<time>`, durations (`0.4 s`)
`<t> s`, the path of the installed shipped configs `<bnbench>/configs/`, and the wall-clock fields of VOLATILE
(the seconds per trial of `--full`) `<t>`. Numbers are bitwise reproducible only on the same kind of CPU and torch build
(docs/tutorial.md, *Another machine, other digits*), so the machine the outputs were made on is recorded in
docs/examples/machine.txt: on it every number is compared; on another machine numbers become `<n>` and runs of
spaces one space, so the check still catches every changed word and line, but not a changed digit.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE, STDOUT

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
MACHINE = EXAMPLES / "machine.txt"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- output: ([\w-]+) -->\n)(.*?)(<!-- /output -->)", re.S)


@dataclass
class Step:
    """One command of a session; shown in `block` (None: it only prepares the next steps)."""

    cmd: str
    block: str | None = None
    prompt: bool = True  # "$ cmd" above its output
    keep: object = None  # lines -> the lines shown (None: all)
    columns: int = 80


def tail(n):
    return lambda lines: (["..."] if len(lines) > n else []) + lines[-n:]


def head(n):
    return lambda lines: lines[:n] + (["..."] if len(lines) > n else [])


def between(first, last):
    """The lines from the one that starts with `first` to the one that starts with `last`, with "..." around."""

    def keep(lines):
        start = next(i for i, line in enumerate(lines) if line.startswith(first))
        end = next(i for i, line in enumerate(lines) if i >= start and line.startswith(last))
        return (["..."] if start else []) + lines[start : end + 1] + (["..."] if end < len(lines) - 1 else [])

    return keep


def table(lines):
    """The table and legend at the end of a comparison: from its header line on."""
    return lines[next(i for i, line in enumerate(lines) if line.startswith("variant ")) :]


def nothing(lines):
    return []


QUICK = "{run:quick-digits}"
SESSIONS = {
    "quick": [
        Step("bnbench run quick -q", "quickstart"),
        Step("bnbench compare results/", "quickstart"),
        Step("bnbench compare results/quick-digits --full --format markdown", "quick-full", prompt=False),
        Step("bnbench compare results/quick-digits --plot quick.png", keep=nothing),
        Step(f"bnbench export {QUICK} --tensorboard tb", "tensorboard-export"),
        Step(f"du -sh --si --apparent-size {QUICK}/checkpoints", "prune"),
        Step(f"bnbench prune {QUICK}", "prune"),
        Step(f"bnbench run --resume {QUICK} --set training.epochs=6", "prune-refuses-epochs"),
        Step(f"du -sh --si --apparent-size {QUICK}/checkpoints", "prune"),
        Step(f"bnbench prune {QUICK} --keep none", "prune"),
    ],
    "sweeps": [
        Step(
            "bnbench run quick --seeds 0-2 --set training.epochs=2 --sweep optimizer.lr=1e-3,1e-2 --tag lr-study \\\n"
            '    --note "do BN\'s gains hold at 10x the rate?"',
            "sweep",
            keep=tail(4),
        ),
        Step("bnbench run quick --sweep optimizer.lr=1e-3,0.001", "sweep"),
        Step("bnbench run quick --sweep dataset.name=digits,mnist", "sweep"),
        Step(f"bnbench show {QUICK}", "sweep-show", keep=between("config:", "tags:")),
        Step("COLUMNS=100 bnbench list --tag lr-study", "tags", keep=between("Runs under", "Left out")),
        Step(f"bnbench run --resume {QUICK} --tag x", "tags"),
        Step(f"bnbench compare {QUICK} --format csv --per-seed --metric test_acc", "per-seed", keep=head(6)),
    ],
    "probes": [
        Step("bnbench run quick --set training.probe_every=50 -q", "probes", keep=tail(2)),
        Step(f"bnbench compare {QUICK} --probes --plot probes.png", "probes"),
    ],
    "placement": [
        Step("bnbench run placement-digits.yaml --until-decided --effect 2 -q", "until-equivalent", False, tail(4)),
        Step(
            "bnbench run placement-digits.yaml --until-decided --effect 1 --max-seeds 10 -q",
            "until-undecided",
            False,
            tail(4),
        ),
    ],
    "tune": [
        Step(
            "bnbench tune quick --set dataset.validation=0.2 --set training.epochs=3 \\\n"
            "    --grid optimizer.lr=1e-3,1e-2 --seeds 100-104 -q",
            "tune",
        ),
    ],
    "timm": [
        Step("bnbench run timm-resnet.yaml --set model.name=dla34 --set 'model.kwargs={}'", "timm-refused", False),
        Step("bnbench run timm-resnet.yaml -q"),
        Step("bnbench compare results/timm-resnet", "timm-compare", prompt=False),
    ],
    "factory": [
        Step("bnbench run my-net.yaml -q"),
        Step("bnbench compare results/my-net", "factory-compare", prompt=False),
        Step("bnbench run dense-net.yaml -q"),
        Step("bnbench compare results/dense-net", "dense-compare", prompt=False, keep=table),
    ],
}
FILES = {  # blocks that show a file of docs/examples/ as it is
    "placement-digits-yaml": "placement-digits.yaml",
    "timm-resnet-yaml": "timm-resnet.yaml",
    "my-nets-py": "my_nets.py",
    "my-net-yaml": "my-net.yaml",
    "dense-nets-py": "dense_nets.py",
}
UNFENCED = {"quick-full"}  # Markdown that the page renders
FIGURES = {"quick": ["quick.png"], "probes": ["probes.png"]}  # copied into docs/ by --write, not compared
NEEDS = {"timm": "timm"}  # sessions that need an optional extra (skipped without it)
VOLATILE = [r"\d+\.\d+ ± \d+\.\d+(<br>Δ [+-]\d+\.\d+ \(\d+ pairs\))? \|$"]  # seconds per trial (--full)


def bnbench_env(columns: int) -> dict:
    """This checkout's bnbench first on PATH and sys.path, a fixed width, no colour."""
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env.pop("FORCE_COLOR", None)
    return env


def newest_run(folder: Path, name: str) -> str:
    return str(max((folder / "results" / name).iterdir()).relative_to(folder))


def run_session(name: str) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """Run a session's steps in a fresh folder: the shown lines of each block, and the figures it drew."""
    blocks: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix=f"bnbench-docs-{name}-") as tmp:
        folder = Path(tmp)
        for path in EXAMPLES.iterdir():
            if path.suffix in (".yaml", ".py"):
                shutil.copy(path, folder)
        for step in SESSIONS[name]:
            cmd = re.sub(r"\{run:([^}]+)\}", lambda m: newest_run(folder, m.group(1)), step.cmd)
            env = bnbench_env(step.columns)
            done = subprocess.run(["bash", "-c", cmd], cwd=folder, env=env, stdout=PIPE, stderr=STDOUT, text=True)
            lines = [line.rstrip() for line in done.stdout.rstrip("\n").split("\n")] if done.stdout else []
            if step.block is None:
                if done.returncode != 0:
                    raise RuntimeError(f"{name}: `{cmd}` failed:\n" + "\n".join(lines))
                continue
            shown = step.keep(lines) if step.keep else lines
            blocks.setdefault(step.block, []).extend(([f"$ {cmd}"] if step.prompt else []) + shown)
        figures = {f: (folder / f).read_bytes() for f in FIGURES.get(name, []) if (folder / f).exists()}
    return blocks, figures


def rendered(name: str, lines: list[str]) -> str:
    if name in UNFENCED:
        return "\n".join(lines) + "\n"
    return "```\n" + "\n".join(lines) + "\n```\n"


def file_block(name: str) -> str:
    path = EXAMPLES / FILES[name]
    return f"```{'python' if path.suffix == '.py' else 'yaml'}\n{path.read_text()}```\n"


def normalise(text: str, numbers: bool) -> str:
    text = re.sub(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}\b", "<time>", text)
    text = re.sub(r"\b\d{8}-\d{6}\b", "<run id>", text)
    text = re.sub(r"\b\d+(\.\d+)? s\b", "<t> s", text)
    text = re.sub(r"\S*/bnbench/configs/", "<bnbench>/configs/", text)
    for pattern in VOLATILE:
        text = "\n".join(re.sub(pattern, "<t>", line) for line in text.split("\n"))
    if numbers:
        text = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "<n>", text)
        text = re.sub(r"[ \t]+", " ", text)
    return text


def machine() -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "")
    return f"{platform.machine()} · {cpu or platform.processor()} · torch {torch.__version__}"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def sessions_to_run(names: list[str]) -> list[str]:
    unknown = set(names) - set(SESSIONS)
    if unknown:
        raise SystemExit(f"no session {', '.join(sorted(unknown))}; sessions: {', '.join(SESSIONS)}")
    chosen = names or list(SESSIONS)
    return [n for n in chosen if NEEDS.get(n) is None or _importable(NEEDS[n])]


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def fresh_blocks(names: list[str]) -> tuple[dict[str, str], dict[str, bytes]]:
    """Every block the chosen sessions make, rendered, and their figures; sessions run side by side."""
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        done = list(pool.map(run_session, names))
    blocks = {b: rendered(b, lines) for made, _ in done for b, lines in made.items()}
    blocks.update({b: file_block(b) for b in FILES})
    return blocks, {f: data for _, figures in done for f, data in figures.items()}


def shown_blocks() -> dict[str, tuple[Path, str]]:
    found = {}
    for page in PAGES:
        for m in BLOCK.finditer(page.read_text()):
            found[m.group(2)] = (page, m.group(3))
    return found


def stale(names: list[str]) -> list[str]:
    """The blocks whose shown text differs from a fresh run (normalised); a note when numbers were not compared."""
    blocks, _ = fresh_blocks(names)
    here = machine()
    numbers = here != MACHINE.read_text().strip()
    problems = [f"note: numbers not compared: made on {MACHINE.read_text().strip()}, this is {here}"] if numbers else []
    shown = shown_blocks()
    known = {step.block for steps in SESSIONS.values() for step in steps} | set(FILES)
    problems += [
        f"{name} ({page.relative_to(ROOT)}): no such output in docs/examples.py"
        for name, (page, _) in shown.items()
        if name not in known
    ]
    for name, text in blocks.items():
        if name not in shown:
            problems.append(f"{name}: made by docs/examples.py but shown nowhere")
        elif normalise(shown[name][1], numbers) != normalise(text, numbers):
            problems.append(f"{name} ({shown[name][0].relative_to(ROOT)}): stale; python docs/examples.py --write")
    return problems


def write(names: list[str]) -> None:
    blocks, figures = fresh_blocks(names)
    for page in PAGES:
        text = page.read_text()
        new = BLOCK.sub(lambda m: m.group(1) + blocks.get(m.group(2), m.group(3)) + m.group(4), text)
        if new != text:
            page.write_text(new)
            print(f"wrote {page.relative_to(ROOT)}")
    for name, data in figures.items():
        (ROOT / "docs" / name).write_bytes(data)
        print(f"wrote docs/{name}")
    MACHINE.write_text(machine() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sessions", nargs="*", help=f"only these ({', '.join(SESSIONS)})")
    parser.add_argument("--write", action="store_true", help="write the fresh outputs into the docs")
    args = parser.parse_args()
    names = sessions_to_run(args.sessions)
    if args.write:
        write(names)
        return
    problems = stale(names)
    print("\n".join(problems) or "docs outputs: current")
    sys.exit(1 if any(not p.startswith("note:") for p in problems) else 0)


if __name__ == "__main__":
    main()
