"""The `bnbench` command: parses arguments, calls the library, prints what it returns."""

import errno
import re
import shlex
import sys
import warnings
from functools import wraps
from pathlib import Path
from typing import List, Optional

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from bnbench.errors import BnbenchError, Interrupted
from bnbench.runner import stopping

CLICK_ERROR = getattr(typer, "TyperException", None) or click.ClickException  # newer typer has click's own copy


class _Commands(TyperGroup):
    """Click's own errors (a missing argument, an unknown option, a bad value) in the style of every other error:
    one line, 'error: ...', and where the help is (click said 'Usage: ...', 'Try ...', then 'Error: ...')."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except CLICK_ERROR as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `bnbench` alone: the help
                e.show()
            else:
                where = f"; see: {e.ctx.command_path} -h" if getattr(e, "ctx", None) is not None else ""
                errors.print(
                    f"error: {e.format_message().rstrip('.')}{where}", highlight=False, soft_wrap=True, markup=False
                )
            sys.exit(e.exit_code)
        except (typer.Abort, click.Abort):
            errors.print("aborted", highlight=False, markup=False)
            sys.exit(1)
        except OSError as e:  # the help or click's own output, to a full standard output (a command's: user_errors)
            if e.errno not in DISK_FAULTS:
                raise
            errors.print(f"error: {_refused_write(e)}", highlight=False, soft_wrap=True, markup=False)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Commands,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Does Batch Normalization help this network, how much, how surely, and how fast?",
    epilog="Start with: bnbench run quick (seconds, no download), then bnbench compare results/.",
)
console = Console()
errors = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"bnbench {version('bnbench')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
):
    """Does Batch Normalization help this network, how much, how surely, and how fast?"""
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"  # one line, as every message here
    stopping.process_ends_with_run = True  # a second Ctrl-C is ignored as a stopped run ends (and this process)


def user_errors(command):
    """Turn a BnbenchError into one line on stderr and exit status 2 (130 after Ctrl-C); bugs keep tracebacks."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Interrupted as e:
            errors.print(f"{e}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(e.code) from None
        except BnbenchError as e:
            errors.print(f"error: {e}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(2) from None
        except OSError as e:  # a disk that refused a write no step above named (a full stdout, a last meta.json)
            if e.errno not in DISK_FAULTS:
                raise
            errors.print(f"error: {_refused_write(e)}", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(2) from None

    return wrapper


DISK_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO}


def _refused_write(error: OSError) -> str:
    """The file (a write() to the output names none: bnbench names its own, see store.atomic_write), why, and what
    to do: a file in a run folder is the run's, which resumes."""
    from bnbench.rundir.store import unwritable

    path = Path(error.filename) if error.filename else None
    run = next((p for p in path.parents[:2] if (p / "meta.json").is_file()), None) if path else None
    then = f"resume with: bnbench run --resume {run}" if run else "run the command again"
    return unwritable(path or "standard output", error, then)


RESUME = "bnbench run --resume "  # how the library's messages end that say how to continue a run


def resume_in_full(command):
    """`run`'s errors that end with how to continue the run ('... bnbench run --resume RUN') end with the whole
    command instead: the options that say where and how loudly the run trains (--jobs, --backend, -q, ...) as
    they were given; those that made the run (CONFIG, --set, --seeds, --sweep, --device, --tag, --note, --out)
    are in its folder, and --resume refuses most of them. A stopped run's ('Resume with:') is on a line of its
    own, to be copied whole (a terminal wraps it if it must); a refused option's stays the error's one line."""

    @wraps(command)
    def wrapper(**options):
        try:
            return command(**options)
        except BnbenchError as e:
            head, found, run_dir = str(e).rpartition(RESUME)
            if found:
                own_line = head.rstrip().lower().endswith("resume with:")
                whole = RESUME + shlex.join([run_dir, *_resume_options(**options)])
                e.args = (f"{head.rstrip()}\n  {whole}" if own_line else head + whole,)
            raise

    return wrapper


def _resume_options(jobs, backend, address, gpus_per_trial, quiet, verbose, **_) -> list[str]:
    given = {"--jobs": jobs != 1, "--backend": backend != "local", "--address": address is not None}
    given |= {"--gpus-per-trial": gpus_per_trial is not None}
    values = {"--jobs": jobs, "--backend": backend, "--address": address, "--gpus-per-trial": gpus_per_trial}
    flags = [str(part) for option, asked in given.items() if asked for part in (option, values[option])]
    return flags + ["-q"] * quiet + ["-" + "v" * verbose] * (verbose > 0)


def _seeds(text: Optional[str]) -> Optional[list[int]]:
    """--seeds 1,2,5-8 -> [1, 2, 5, 6, 7, 8]: integers and inclusive ranges, comma-separated, in the given order."""
    if text is None:
        return None
    ranges = [_seed_range(text, part.strip()) for part in text.split(",")]
    _bounded_seeds(text, ranges)
    return [seed for r in ranges for seed in r]


def _seed_range(text: str, part: str) -> range:
    """'5-8' -> range(5, 9), '3' -> range(3, 4): ASCII digits only (int() also takes '٣' and '1_0'), at most 19
    (seeds are below 2**63), and a range, not its list, so that a huge one is counted before anything is built."""
    match = re.fullmatch(r"([0-9]{1,19})(?:-([0-9]{1,19}))?", part)
    if not match:
        raise BnbenchError(
            f"--seeds {text}: '{part}' is not a seed or a range; use integers below 2**63 and "
            f"ranges, e.g. --seeds 0-9 or --seeds 1,2,5-8"
        )
    first, last = int(match[1]), int(match[2] or match[1])
    if last < first:
        raise BnbenchError(f"--seeds {text}: the range '{part}' runs backwards; write it low-high")
    return range(first, last + 1)


def _bounded_seeds(text: str, ranges: list[range]) -> None:
    """Each seed makes at least one trial: more seeds than a run's trials are refused before they are listed
    (a list of a billion seeds fills the memory)."""
    from bnbench.experiment.config import MAX_TRIALS

    count = sum(map(len, ranges))
    if count > MAX_TRIALS:
        raise BnbenchError(
            f"--seeds {text}: {count:,} seeds, more than the {MAX_TRIALS:,} trials one run may hold; "
            f"run fewer seeds, or split them into several runs (compare pools them)"
        )


def _home(path):
    """`~/x` as a shell reads it, for paths given quoted or through a tool that does not expand it."""
    if isinstance(path, list):
        return [p.expanduser() for p in path]
    return path.expanduser() if path is not None else None


def _config_names(incomplete: str) -> list[str]:
    """Completion of CONFIG: the shipped configs' names (`run q<TAB>` -> quick); where none matches, nothing, so
    that the shell completes a file name (typer's bash and zsh scripts fall back to files)."""
    from bnbench.experiment.loading import shipped_configs

    return [name for name in sorted(shipped_configs()) if name.startswith(incomplete)]


@app.command(
    short_help="Train an experiment's trials (variants x seeds x sweep points) into a run folder.",
    epilog="\b\nExamples:\n  bnbench run quick\n  bnbench run configs/mlp.yaml --seeds 0-4 --set "
    "training.epochs=1\n  bnbench run --resume results/quick-digits/20261127-120150 --seeds 5-9",
)
@user_errors
@resume_in_full
def run(
    config: str = typer.Argument(
        ...,
        metavar="CONFIG",
        autocompletion=_config_names,
        help="Config file, shipped config name (see `bnbench list`), or with --resume a run folder.",
    ),
    run_folder: Optional[Path] = typer.Argument(
        None,
        metavar="RUN_DIR",
        callback=_home,
        help="With --resume after a CONFIG: the run folder of that config to continue.",
    ),
    set_: List[str] = typer.Option(
        [],
        "--set",
        "-s",
        metavar="PATH=VALUE",
        help="Override a field: --set training.epochs=1 (repeatable; values are YAML).",
    ),
    sweep: List[str] = typer.Option(
        [],
        "--sweep",
        metavar="PATH=V1,V2",
        help="Sweep a field over comma-separated YAML values, adding the axis or replacing the config's: --sweep "
        "optimizer.lr=1e-4,1e-3, --sweep 'model.hidden=[64,32],[128,64]' (repeatable: one axis each).",
    ),
    tag: List[str] = typer.Option(
        [], "--tag", metavar="NAME", help="Tag the new run (repeatable); `bnbench list --tag NAME` finds it."
    ),
    note: Optional[str] = typer.Option(None, metavar="TEXT", help="A one-line note on the new run (list, show)."),
    seeds: Optional[str] = typer.Option(
        None,
        metavar="SEEDS",
        help="Seeds to run: --seeds 1,2,3, --seeds 0-9, --seeds 1,2,5-8. With --resume: seeds to add to the run.",
    ),
    device: Optional[str] = typer.Option(None, metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps."),
    out: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder; the run goes to OUT/<name>/<run id>/."
    ),
    jobs: int = typer.Option(
        1,
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Train this many trials at once, in worker processes (--backend local).",
    ),
    backend: str = typer.Option(
        "local",
        metavar="local|ray",
        help="Where trials train: local (this process, or --jobs worker processes) or ray (Ray tasks; pip install "
        "'bnbench[ray]').",
    ),
    address: Optional[str] = typer.Option(
        None,
        metavar="ADDRESS",
        help="With --backend ray: the Ray cluster, HOST:PORT or auto (the cluster of this machine) [default: a Ray"
        " instance of its own].",
    ),
    gpus_per_trial: Optional[float] = typer.Option(
        None,
        metavar="GPUS",
        help="With --backend ray: GPUs each trial reserves; 0.25 packs 4 on a GPU (bookkeeping, not isolation) "
        "[default: 1 for device cuda, else 0].",
    ),
    resume: bool = typer.Option(
        False,
        help="Continue a stopped run, or grow a run folder (--seeds to add, --set "
        "training.epochs=N): CONFIG is the run folder, or the config whose "
        "newest partial run to continue.",
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="Print only notes and the verdict (run.log in the run folder always has every line).",
    ),
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="-v: a line per epoch; -vv: and the tutorial's 'Loss after mini-batch N' lines.",
    ),
    until_decided: bool = typer.Option(
        False,
        "--until-decided",
        help="Add seeds in rounds of 5 until every variant is decided against the baseline (better, worse, "
        "or equivalent within --effect) by a group-sequential test, or --max-seeds is reached.",
    ),
    max_seeds: Optional[int] = typer.Option(
        None,
        metavar="N",
        help="With --until-decided: the most seeds to train, each training every variant (at most 10,000 trials in "
        "all) [default: 20].",
    ),
    metric: Optional[str] = typer.Option(
        None,
        metavar="METRIC",
        help="With --until-decided: what is decided on: test_acc, best_acc, test_loss or train_loss "
        "[default: test_acc].",
    ),
    alpha: Optional[float] = typer.Option(
        None, metavar="A", help="With --until-decided: the family-wise error rate [default: 0.05]."
    ),
    effect: Optional[float] = typer.Option(
        None,
        metavar="X",
        help="With --until-decided: also decide 'equivalent' when the difference lies within ±X (points for "
        "accuracies).",
    ),
    spending: Optional[str] = typer.Option(
        None,
        metavar="pocock|obf",
        help="With --until-decided: the alpha-spending function, pocock (stops early on large effects) or obf "
        "(O'Brien–Fleming: keeps alpha for the last look) [default: pocock].",
    ),
):
    """Train every trial (variants x seeds x sweep points) of an experiment and store its results."""
    from bnbench.backends import Dispatch
    from bnbench.rundir.log import NOTE, TRIAL, finished
    from bnbench.runner.closing import ClosingLines
    from bnbench.runner.execute import execute, plan
    from bnbench.views.layout import wrap
    from bnbench.views.progress import RichReporter

    seeds_ = _seeds(seeds)
    dispatch = Dispatch(backend, jobs, address, gpus_per_trial, quiet)
    asked = {"max_seeds": max_seeds, "metric": metric, "alpha": alpha, "effect": effect, "spending": spending}
    asked = {k: v for k, v in asked.items() if v is not None}
    if asked and not until_decided:
        raise BnbenchError(f"--{next(iter(asked)).replace('_', '-')}: only with --until-decided")
    todo = plan(
        config,
        run_folder,
        resume=resume,
        set_=tuple(set_),
        seeds=seeds_,
        device=device,
        out=out,
        sweeps=tuple(sweep),
        tags=tuple(tag),
        note=note,
    )
    sequential = _sequential(todo, until_decided, asked)
    if sequential is False:
        console.print(f"nothing to do: {todo.reason}", highlight=False, soft_wrap=True, markup=False)
        return
    closing = ClosingLines()
    try:
        with RichReporter(console, NOTE if quiet else TRIAL + verbose) as reporter:
            if sequential:
                from bnbench.runner.until_decided import run as rounds

                run_dir = rounds(todo, sequential, dispatch, sys.argv, reporter)
            else:
                run_dir = execute(todo, dispatch, sys.argv, reporter)
        lines = closing.lines(run_dir)
        finished(run_dir, lines)
    finally:
        closing.close()
    width = console.width if console.is_terminal else None  # wrapped on a terminal, never inside [..]; whole in a pipe
    for line in (part for line in lines for part in wrap(line, width, "", "  ", "; ")):
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    console.print(f"done: {run_dir}\nnext: bnbench compare {run_dir}", highlight=False, soft_wrap=True, markup=False)


def _sequential(todo, until_decided: bool, asked: dict):
    """How `run` proceeds: the settings of --until-decided for a new run, True for a sequential run continued,
    None for a plain run, False for nothing to do."""
    if todo.kind == "new":
        from bnbench.runner.until_decided import Settings

        return Settings(**asked) if until_decided else None
    from bnbench.runner.until_decided import continued, is_sequential, pending

    if not (until_decided or is_sequential(todo.run_dir)):
        return None if todo.kind != "nothing" else False
    continued(todo.run_dir, None if not asked else asked)
    if todo.kind == "grow":
        raise BnbenchError(
            f"{todo.run_dir}: a sequential run adds the seeds its plan says, round by round; continue it with: "
            f"bnbench run --resume {todo.run_dir}"
        )
    return True if todo.kind == "resume" or pending(todo.run_dir) else False


@app.command(
    short_help="Compare each variant with the baseline across seeds: verdict, intervals, p-values.",
    epilog="\b\nExamples:\n  bnbench compare\n  bnbench compare --latest\n  bnbench compare results/mlp-cifar10 --all\n"
    "  bnbench compare results/mlp-cifar10 --format markdown --plot mlp.png\n  bnbench compare RUN_B --baseline "
    "plain@RUN_A",
)
@user_errors
def compare(
    paths: List[Path] = typer.Argument(
        None,
        metavar="PATH",
        callback=_home,
        help="Results folders (searched for runs) or run folders [default: --results].",
    ),
    results: Path = typer.Option(
        Path("results"),
        metavar="DIR",
        callback=_home,
        help="Results folder: compared when no PATH is given, and where VARIANT@RUN's run id is looked for.",
    ),
    latest: bool = typer.Option(
        False, "--latest", help="Only the newest run under the PATHs (or --results), on its own (not pooled)."
    ),
    every: bool = typer.Option(
        False,
        "--all",
        help="Each run's table in full [default: the newest run's, and a line per other run with its answer].",
    ),
    format_: str = typer.Option(
        "table", "--format", "-f", metavar="FORMAT", help="table, markdown, csv, json or latex."
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE", callback=_home, help="Write to this file instead of printing."
    ),
    plot: Optional[Path] = typer.Option(
        None,
        metavar="FILE",
        callback=_home,
        help="Also draw training loss and test accuracy vs step: FILE.png, .pdf or .svg (FILE alone: FILE.png); 5 "
        "runs a page (FILE-2.png, ...; a PDF holds the pages), at most the first 20 runs.",
    ),
    title: Optional[str] = typer.Option(
        None, metavar="TEXT", help="With --plot: the figure's title [default: each run's]."
    ),
    dpi: int = typer.Option(
        110, min=10, max=600, metavar="N", help="With --plot: resolution of a PNG (PDF and SVG are vector)."
    ),
    windows: bool = typer.Option(
        False, help="The tutorial's layout: mean loss per log_every mini-batches of one epoch, variants side by side."
    ),
    epoch: Optional[int] = typer.Option(None, min=1, metavar="N", help="Compare at this epoch [default: the last]."),
    baseline: Optional[str] = typer.Option(
        None,
        metavar="VARIANT[@RUN]",
        help="Variant to compare with [default: each run's baseline]; VARIANT@RUN: that variant of run RUN (its "
        "folder or run id) for every run, paired on the seeds both have.",
    ),
    no_pool: bool = typer.Option(
        False,
        "--no-pool",
        help="Compare every run on its own [default: runs whose configs differ only in seeds are pooled].",
    ),
    metric: List[str] = typer.Option(
        [],
        "--metric",
        "-m",
        metavar="NAME",
        help="Show only these (repeatable): train_loss, test_loss, test_acc, best_acc, steps, steps_acc, seconds.",
    ),
    full: bool = typer.Option(
        False,
        "--full",
        help="Every statistic of every measure (the default table is the answer at a glance, in the terminal's width).",
    ),
    test: str = typer.Option(
        "t",
        "--test",
        metavar="t|exact",
        help="The test a decision uses: t (paired t-test: assumes normal differences; at 5 seeds the only one that "
        "can decide) or exact (sign-flip: assumes nothing, needs ≥ 6 seeds). Both p-values are always shown.",
    ),
    effect: Optional[float] = typer.Option(
        None,
        "--effect",
        min=1e-9,
        max=100,
        metavar="X",
        help="Say how many seeds a test-acc difference of X points would need (80% power).",
    ),
    per_seed: bool = typer.Option(
        False,
        "--per-seed",
        help="With --format csv or json: the numbers the summary is made from, a row per run x sweep point x "
        "variant x seed x measure (value, ok, the same seed's baseline value, the difference).",
    ),
    probes: bool = typer.Option(
        False,
        "--probes",
        help="The probes of runs made with training.probe_every (probes.csv): per layer and measure, each "
        "variant's mean and its paired difference from the baseline; with --plot, drawn vs step (first run only).",
    ),
):
    """Compare each variant with the baseline over seeds: verdict, paired differences with Holm-adjusted p-values,
    steps to target."""
    from bnbench.analysis import compare_runs
    from bnbench.views.report import comparison_output

    if plot is not None:
        from bnbench.views.plots import check_path

        plot = check_path(plot)  # before the comparison, which can take a while
    paths = _compared(paths, results, latest)
    baseline = _reference(baseline, paths, results)
    if probes:
        return _compare_probes(paths, baseline, plot, title, dpi, output)
    comparisons, skipped = compare_runs(paths, baseline, epoch, pool=not no_pool, test=test, effect=effect)
    for warning in skipped:
        errors.print(f"warning: {warning}", highlight=False, soft_wrap=True, markup=False)
    detail = full or windows or metric
    width = None if output else _width() if detail else console.width  # the glance: the terminal's, COLUMNS or 80
    rendered = comparison_output(
        comparisons, format_, metric, windows, width=width, full=full, per_seed=per_seed, every=every
    )
    if plot is not None:
        from bnbench.views.plots import MAX_RUNS, PER_PAGE, save_plot

        for file in save_plot(comparisons, plot, title, dpi):
            errors.print(f"plot: {file}", highlight=False, soft_wrap=True, markup=False)
        if len(comparisons) > MAX_RUNS:
            errors.print(
                f"plot: drew the first {MAX_RUNS} of {len(comparisons)} runs ({PER_PAGE} a page); to draw "
                f"others, pass their folders",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
    _emit(rendered, output)


def _compared(paths: list[Path], results: Path, latest: bool) -> list[Path]:
    """The folders `compare` reads: the PATHs, else the results folder; with --latest, the newest run under them."""
    from bnbench.rundir import store

    if not paths and not results.is_dir():
        raise BnbenchError(
            f"--results {results}: no such folder; pass a results folder or run folder, or train a run first: "
            f"bnbench run quick"
        )
    paths = paths or [results]
    if not latest:
        return paths
    found = store.find_runs(paths)
    if not found:
        raise BnbenchError(f"--latest: no runs under {', '.join(map(str, paths))}; train one: bnbench run quick")
    return found[:1]


def _reference(baseline: Optional[str], paths: list[Path], results: Path) -> Optional[str]:
    """--baseline VARIANT@RUN with RUN a run id that is not among the compared runs: the run of that id under
    --results, as a folder."""
    from bnbench.rundir import store

    variant, at, ref = (baseline or "").partition("@")
    if not at or (Path(ref) / "meta.json").is_file() or not results.is_dir():
        return baseline
    try:
        store.find_run(ref, store.find_runs(paths))
        return baseline
    except BnbenchError:
        return f"{variant}@{store.find_run(ref, store.find_runs([results]))}"


def _compare_probes(
    paths: list[Path], baseline: Optional[str], plot: Optional[Path], title: Optional[str], dpi: int, output
) -> None:
    """`compare --probes`: the probe table (views.probe_report), and the first run's probes drawn with --plot."""
    from bnbench.analysis.probes import probe_summaries
    from bnbench.views.probe_report import probes_output

    summaries = probe_summaries(paths, baseline)
    if plot is not None:
        from bnbench.views.probe_plots import save_probe_plot

        errors.print(f"plot: {save_probe_plot(summaries[0], plot, title, dpi)}", highlight=False, markup=False)
    _emit(probes_output(summaries, None if output else console.width), output)


def _emit(rendered: str, output: Optional[Path]) -> None:
    """`compare`'s text to stdout, or to --output FILE (said on stderr)."""
    if output is None:
        typer.echo(rendered, nl=False)
        return
    try:
        output.write_text(rendered)
    except OSError as e:
        raise BnbenchError(f"--output {output}: cannot write ({e.strerror or e})") from None
    errors.print(f"wrote: {output}", highlight=False, soft_wrap=True, markup=False)


@app.command(
    "list",
    short_help="List the configs and the runs under the results folder.",
    epilog="\b\nExamples:\n  bnbench list\n  bnbench list --format json",
)
@user_errors
def list_(
    configs: Optional[Path] = typer.Option(
        None,
        metavar="DIR",
        callback=_home,
        help="Folder of configs [default: ./configs if present, else the shipped ones].",
    ),
    results: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder to list runs from."
    ),
    format_: str = typer.Option(
        "table", "--format", "-f", metavar="table|json", help="table or json (both lists, every field)."
    ),
    tag: List[str] = typer.Option(
        [], "--tag", metavar="NAME", help="Only the runs tagged NAME (repeatable: tagged with all of them)."
    ),
):
    """List the experiment configs and the runs stored under the results folder (status, seeds, epochs, the
    options each run was started with)."""
    from bnbench.views.report import list_output

    typer.echo(list_output(configs, results, format_, console.width, tuple(tag)), nl=False)


@app.command(
    short_help="One run: status, settings, each trial, the verdict.",
    epilog="\b\nExamples:\n  bnbench show results/quick-digits/20261127-120150\n  bnbench show "
    "20261127-120150 --format json",
)
@user_errors
def show(
    run_ref: str = typer.Argument(
        ..., metavar="RUN", help="A run folder, or a run id ('<run id>' or '<name>/<run id>') under --results."
    ),
    results: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder to look for a run id in."
    ),
    format_: str = typer.Option("table", "--format", "-f", metavar="table|json", help="table or json (every field)."),
):
    """One run: status, engine and device, where its config came from and how it differs from that file, each
    trial's progress and final numbers, and the verdict."""
    from bnbench.analysis.show import find, summary
    from bnbench.views.report import show_output

    typer.echo(show_output(summary(find(run_ref, results)), format_, console.width), nl=False)


@app.command(
    short_help="Export a run's curves: every batch loss, evaluation and epoch, as TensorBoard scalars.",
    epilog="\b\nExamples:\n  bnbench export results/quick-digits/20261127-120150 --tensorboard tb\n  tensorboard "
    "--logdir tb",
)
@user_errors
def export(
    run_ref: str = typer.Argument(
        ..., metavar="RUN", help="A run folder, or a run id ('<run id>' or '<name>/<run id>') under --results."
    ),
    tensorboard: Path = typer.Option(
        ...,
        metavar="DIR",
        callback=_home,
        help="Write TensorBoard event files to DIR/<name>/<run id>/, a TensorBoard run per trial (pip install "
        "'bnbench[tensorboard]').",
    ),
    results: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder to look for a run id in."
    ),
):
    """Export every trial's training loss per batch, evaluations and epoch metrics as TensorBoard scalars, one
    TensorBoard run per trial; refuses a run already exported to DIR."""
    from bnbench.analysis.show import find
    from bnbench.views.tensorboard import export as to_tensorboard

    written = to_tensorboard(find(run_ref, results), tensorboard)
    typer.echo(f"wrote: {written}\nview: tensorboard --logdir {tensorboard}")


@app.command(
    short_help="Free the disk a run's finished trials hold in checkpoints.",
    epilog="\b\nExamples:\n  bnbench prune results/quick-digits/20261127-120150\n  bnbench prune "
    "20261127-120150 --keep none",
)
@user_errors
def prune(
    run_ref: str = typer.Argument(
        ..., metavar="RUN", help="A run folder, or a run id ('<run id>' or '<name>/<run id>') under --results."
    ),
    keep: str = typer.Option(
        "final", metavar="final|none", help="final: the model weights only (no optimizer state); none: nothing."
    ),
    results: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder to look for a run id in."
    ),
):
    """Prune the checkpoints of a run's finished trials (not of a running run): the run still resumes and grows by
    seeds, but can no longer grow by epochs. Prints what it freed."""
    from bnbench.analysis.show import find
    from bnbench.rundir.checkpoints import prune_run

    typer.echo(prune_run(find(run_ref, results), keep).text())


@app.command(
    "rm",
    short_help="Delete a run folder (not while a run holds it).",
    epilog="\b\nExamples:\n  bnbench rm results/quick-digits/20261127-120150\n  bnbench rm 20261127-120150 --yes",
)
@user_errors
def rm(
    run_ref: str = typer.Argument(
        ..., metavar="RUN", help="A run folder, or a run id ('<run id>' or '<name>/<run id>') under --results."
    ),
    results: Path = typer.Option(
        Path("results"), metavar="DIR", callback=_home, help="Results folder to look for a run id in."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
):
    """Delete a run folder and everything in it (rows, checkpoints, run.log), after asking; refused while a run
    trains, resumes or grows in it (its lock is held). Prints what it removed."""
    from bnbench.analysis.show import find
    from bnbench.rundir.removal import remove_run

    def confirm(run_dir: Path, holds: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise BnbenchError(f"{run_dir}: no terminal to ask on; to delete it: bnbench rm {run_dir} --yes")
        return typer.confirm(f"delete {run_dir} ({holds})?", default=False, err=True)

    typer.echo(remove_run(find(run_ref, results), confirm))


@app.command(
    short_help="Write a config and a model factory to start your own network from.",
    epilog="\b\nExamples:\n  bnbench init\n  bnbench init experiments/mine",
)
@user_errors
def init(
    folder: Path = typer.Argument(Path("."), metavar="[FOLDER]", callback=_home, help="Where to write them."),
):
    """Write FOLDER/my_net.yaml (BN vs none on the bundled digits set) and FOLDER/my_net.py (the network, with
    norm_layer where the normalization goes): they run as written, in seconds; never overwrites a file."""
    from bnbench.experiment.scaffold import init as write

    config, module = write(folder)
    typer.echo(f"wrote: {config}, {module}\nnext: bnbench run {config}")


def _width() -> Optional[int]:
    """The terminal's width for text tables; None when output goes to a pipe or file: nothing is wrapped then."""
    return console.width if console.is_terminal else None
