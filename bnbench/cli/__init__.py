"""The `bnbench` command: parses arguments (declared in `bnbench.cli.options`), calls the library, prints what it
returns."""

import sys
import warnings
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from bnbench.backends import stopping
from bnbench.cli import options as o
from bnbench.errors import BnbenchError

CLICK_ERROR = getattr(typer, "TyperException", None) or click.ClickException  # newer typer has click's own copy


class _Commands(TyperGroup):
    """Every error a user can cause in one style, one line on stderr (views.error_lines): click's own (a missing
    argument, an unknown option: click said 'Usage: ...', 'Try ...', then 'Error: ...') as 'error: ...' and where
    the help is. Bugs keep their tracebacks."""

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
                _note(f"error: {e.format_message().rstrip('.')}{where}")
            sys.exit(e.exit_code)
        except (typer.Abort, click.Abort):
            _note("aborted")
            sys.exit(1)
        except Exception as e:
            from bnbench.views.error_lines import error_line

            line, status = error_line(e) or (None, None)
            if line is None:
                raise
            _note(line)
            sys.exit(status)
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


def _say(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True, markup=False)


def _note(line: str) -> None:
    errors.print(line, highlight=False, soft_wrap=True, markup=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"bnbench {version('bnbench')}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
):
    """Does Batch Normalization help this network, how much, how surely, and how fast?"""
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"  # one line, as every message here
    stopping.process_ends_with_run = True  # a second Ctrl-C is ignored as a stopped run ends (and this process)


@app.command(
    short_help="Train an experiment's trials (variants x seeds x sweep points) into a run folder.",
    epilog="\b\nExamples:\n  bnbench run quick\n  bnbench run configs/mlp.yaml --seeds 0-4 --set "
    "training.epochs=1\n  bnbench run --resume results/quick-digits/20261127-120150 --seeds 5-9",
)
def run(
    config: o.Config,
    run_folder: o.RunDir = None,
    set_: o.Set = [],
    sweep: o.Sweep = [],
    tag: o.RunTag = [],
    note: o.Note = None,
    seeds: o.Seeds = None,
    device: o.Device = None,
    out: o.Out = o.RESULTS,
    jobs: o.Jobs = 1,
    backend: o.BackendOption = o.Backend.local,
    address: o.Address = None,
    gpus_per_trial: o.GpusPerTrial = None,
    resume: o.Resume = False,
    quiet: o.Quiet = False,
    verbose: o.Verbose = 0,
    until_decided: o.UntilDecided = False,
    max_seeds: o.MaxSeeds = None,
    metric: o.UntilMetric = None,
    alpha: o.Alpha = None,
    effect: o.Margin = None,
    spending: o.SpendingOption = None,
):
    """Train every trial (variants x seeds x sweep points) of an experiment and store its results."""
    from bnbench.backends.dispatch import Dispatch
    from bnbench.rundir.log import NOTE, TRIAL
    from bnbench.runner.execute import plan
    from bnbench.runner.seeds import seed_list
    from bnbench.runner.session import asked_settings, proceeding, train
    from bnbench.views.layout import wrap
    from bnbench.views.progress import RichReporter
    from bnbench.views.resume_hint import resume_flags, resume_in_full

    with resume_in_full(resume_flags(jobs, backend.value, address, gpus_per_trial, quiet, verbose)):
        seed_numbers = seed_list(seeds)
        dispatch = Dispatch(backend.value, jobs, address, gpus_per_trial, quiet)
        asked = asked_settings(until_decided, max_seeds, o.value(metric), alpha, effect, o.value(spending))
        made = dict(set_=tuple(set_), seeds=seed_numbers, device=device, out=out, sweeps=tuple(sweep))
        todo = plan(config, run_folder, resume=resume, tags=tuple(tag), note=note, **made)
        sequential = proceeding(todo, until_decided, asked)
        if sequential is False:
            return _say(f"nothing to do: {todo.reason}")
        level = NOTE if quiet else TRIAL + verbose
        run_dir, lines = train(todo, sequential, dispatch, sys.argv, lambda: RichReporter(console, level))
    width = console.width if console.is_terminal else None  # wrapped on a terminal, never inside [..]; whole in a pipe
    for line in (part for line in lines for part in wrap(line, width, "", "  ", "; ")):
        _say(line)
    _say(f"done: {run_dir}\nnext: bnbench compare {run_dir}")


@app.command(
    short_help="Compare each variant with the baseline across seeds: verdict, intervals, p-values.",
    epilog="\b\nExamples:\n  bnbench compare\n  bnbench compare --latest\n  bnbench compare results/mlp-cifar10 --all\n"
    "  bnbench compare results/mlp-cifar10 --format markdown --plot mlp.png\n  bnbench compare results/mlp-cifar10 "
    "--format html --output report.html\n  bnbench compare RUN_B --baseline plain@RUN_A",
)
def compare(
    paths: o.Paths = None,
    results: o.ComparedResults = o.RESULTS,
    latest: o.Latest = False,
    every: o.Every = False,
    format_: o.FormatOption = o.Format.table,
    output: o.Output = None,
    plot: o.Plot = None,
    title: o.Title = None,
    dpi: o.Dpi = o.DPI,
    windows: o.Windows = False,
    epoch: o.Epoch = None,
    baseline: o.Baseline = None,
    no_pool: o.NoPool = False,
    metric: o.Metrics = [],
    full: o.Full = False,
    test: o.TestOption = o.Test.t,
    effect: o.Effect = None,
    per_seed: o.PerSeed = False,
    probes: o.Probes = False,
):
    """Compare each variant with the baseline over seeds: verdict, paired differences with Holm-adjusted p-values,
    steps to target."""
    from bnbench.analysis.selection import compared, reference
    from bnbench.views.comparing import Figure, Shown, comparison_text, probes_text, save_text

    figure = Figure.asked(plot, title, dpi)
    paths = compared(paths, results, latest)
    baseline = reference(baseline, paths, results)
    width = None if output else console.width
    if probes:
        text = probes_text(paths, baseline, figure, _note, width)
    else:
        how = dict(epoch=epoch, pool=not no_pool, test=test.value, effect=effect)
        shown = Shown(fmt=format_.value, metrics=metric, windows=windows, full=full, per_seed=per_seed, every=every)
        text = comparison_text(paths, baseline, figure, _note, width, console.is_terminal, how, shown)
    if output is None:
        return typer.echo(text, nl=False)
    save_text(text, output)
    _note(f"wrote: {output}")


@app.command(
    short_help="Each variant at its own best setting (chosen on validation), then compared on test.",
    epilog="\b\nExamples:\n  bnbench tune quick --set dataset.validation=0.1 --grid optimizer.lr=1e-4,1e-3,1e-2 "
    "--seeds 100-104\n  bnbench tune --resume results/quick-digits/20261207-120150",
)
def tune(
    config: o.TuneConfig,
    grid: o.Grid = [],
    tune_seeds: o.TuneSeeds = None,
    seeds: o.FinalSeeds = None,
    metric: o.TuneMetricOption = o.TuneMetric.val_acc,
    margin: o.TuneMargin = None,
    set_: o.Set = [],
    device: o.Device = None,
    out: o.Out = o.RESULTS,
    jobs: o.Jobs = 1,
    backend: o.BackendOption = o.Backend.local,
    address: o.Address = None,
    gpus_per_trial: o.GpusPerTrial = None,
    resume: o.TuneResume = False,
    plot: o.TunePlot = None,
    quiet: o.Quiet = False,
    verbose: o.Verbose = 0,
    until_decided: o.UntilDecided = False,
    max_seeds: o.MaxSeeds = None,
    alpha: o.Alpha = None,
    effect: o.Margin = None,
    spending: o.SpendingOption = None,
):
    """Choose each variant's own optimizer setting from --grid on the validation split (tuning seeds), train each
    at its choice and all at the config's own setting on fresh seeds, and compare both on test: the tuned and the
    equal-setting verdicts side by side, and how wide each variant's range of good settings is."""
    from bnbench.backends.dispatch import Dispatch
    from bnbench.rundir.log import NOTE, TRIAL
    from bnbench.runner import tune as tuning
    from bnbench.runner.seeds import seed_list
    from bnbench.runner.session import asked_settings
    from bnbench.views.plot_file import check_path
    from bnbench.views.progress import RichReporter
    from bnbench.views.tune_text import tune_output

    plot = None if plot is None else check_path(plot)
    dispatch = Dispatch(backend.value, jobs, address, gpus_per_trial, quiet)
    asked = asked_settings(until_decided, max_seeds, None, alpha, effect, o.value(spending))
    if resume:
        made = {"--grid": grid, "--tune-seeds": tune_seeds, "--seeds": seeds, "--margin": margin, "--set": set_}
        made |= {"--device": device, "--until-decided": until_decided}
        started = tuning.reopen(Path(config).expanduser(), made)
    else:
        made = dict(tune_seeds=seed_list(tune_seeds), seeds=seed_list(seeds), metric=metric.value, margin=margin)
        made["until_decided"] = asked if until_decided else None
        started = tuning.start(config, tuple(grid), set_=tuple(set_), device=device, out=out, argv=sys.argv, **made)
    level = NOTE if quiet else TRIAL + verbose
    done = tuning.train(started, dispatch, sys.argv, lambda: RichReporter(console, level))
    typer.echo(tune_output(done, console.width), nl=False)
    if plot is not None:
        from bnbench.views.tune_plot import save_sensitivity

        _note(f"wrote: {save_sensitivity(done, plot)}")
    _say(f"done: {done.dir}")


@app.command(
    "list",
    short_help="List the configs and the runs under the results folder.",
    epilog="\b\nExamples:\n  bnbench list\n  bnbench list --format json",
)
def list_(
    configs: o.Configs = None,
    results: o.ListedResults = o.RESULTS,
    format_: o.ListFormatOption = o.ListFormat.table,
    tag: o.ListTag = [],
):
    """List the experiment configs and the runs stored under the results folder (status, seeds, epochs, the
    options each run was started with)."""
    from bnbench.views.list_text import list_output

    typer.echo(list_output(configs, results, format_.value, console.width, tuple(tag)), nl=False)


@app.command(
    short_help="One run: status, settings, each trial, the verdict.",
    epilog="\b\nExamples:\n  bnbench show results/quick-digits/20261127-120150\n  bnbench show "
    "20261127-120150 --format json",
)
def show(run_ref: o.Run, results: o.RunResults = o.RESULTS, format_: o.ShowFormat = o.ListFormat.table):
    """One run: status, engine and device, where its config came from and how it differs from that file, each
    trial's progress and final numbers, and the verdict."""
    from bnbench.analysis.show import find, summary
    from bnbench.views.show_text import show_output

    typer.echo(show_output(summary(find(run_ref, results)), format_.value, console.width), nl=False)


@app.command(
    short_help="Export a run's curves: every batch loss, evaluation and epoch, as TensorBoard scalars.",
    epilog="\b\nExamples:\n  bnbench export results/quick-digits/20261127-120150 --tensorboard tb\n  tensorboard "
    "--logdir tb",
)
def export(run_ref: o.Run, tensorboard: o.Tensorboard, results: o.RunResults = o.RESULTS):
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
def prune(run_ref: o.Run, keep: o.KeepOption = o.Keep.final, results: o.RunResults = o.RESULTS):
    """Prune the checkpoints of a run's finished trials (not of a running run): the run still resumes and grows by
    seeds, but can no longer grow by epochs. Prints what it freed."""
    from bnbench.analysis.show import find
    from bnbench.rundir.checkpoints import prune_run

    typer.echo(prune_run(find(run_ref, results), keep.value).text())


@app.command(
    "rm",
    short_help="Delete a run folder (not while a run holds it).",
    epilog="\b\nExamples:\n  bnbench rm results/quick-digits/20261127-120150\n  bnbench rm 20261127-120150 --yes",
)
def rm(run_ref: o.Run, results: o.RunResults = o.RESULTS, yes: o.Yes = False):
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
def init(folder: o.Folder = Path(".")):
    """Write FOLDER/my_net.yaml (BN vs none on the bundled digits set) and FOLDER/my_net.py (the network, with
    norm_layer where the normalization goes): they run as written, in seconds; never overwrites a file."""
    from bnbench.experiment.scaffold import init as write

    config, module = write(folder)
    typer.echo(f"wrote: {config}, {module}\nnext: bnbench run {config}")
