"""Every argument and option of `bnbench`, declared once in Typer's `Annotated` style, shared by the commands that
take it (RUN and its --results by show, export, prune and rm).

A choice is an Enum whose values are what the library takes (`.value`); it is parsed by `_choice`, so that a bad
value is bnbench's one line ('--backend x: expected local or ray'), not click's 'Invalid value for ...'."""

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from bnbench.errors import BnbenchError

RESULTS = Path("results")
DPI = 110  # --plot's PNG resolution (views.plots.DPI, which imports matplotlib)


def _home(path):
    """`~/x` as a shell reads it, for paths given quoted or through a tool that does not expand it."""
    if isinstance(path, list):
        return [p.expanduser() for p in path]
    return path.expanduser() if path is not None else None


def _path(kind, metavar: str, help: str, *names: str):
    """A path argument or option (`kind`: typer.Argument or typer.Option), `~` expanded."""
    return kind(*names, metavar=metavar, callback=_home, help=help)


def _config_names(incomplete: str) -> list[str]:
    """Completion of CONFIG: the shipped configs' names (`run q<TAB>` -> quick); where none matches, nothing, so
    that the shell completes a file name (typer's bash and zsh scripts fall back to files)."""
    from bnbench.experiment.loading import shipped_configs

    return [name for name in sorted(shipped_configs()) if name.startswith(incomplete)]


def _choice(kind: type[Enum], refusal: str):
    """The parser of an Enum option: the member of that value, or `refusal` (formatted with the value) as the
    error's one line."""

    def parse(value):
        try:
            return kind(value)
        except ValueError:
            raise BnbenchError(refusal.format(value)) from None

    return parse


def _choices(name: str, *values: str) -> type[Enum]:
    """An Enum of strings, each member named as its value."""
    return Enum(name, [(value, value) for value in values], type=str, module=__name__)


Backend = _choices("Backend", "local", "ray")
Tested = _choices("Tested", "train_loss", "test_loss", "test_acc", "val_loss", "val_acc", "best_acc")  # decided on
Spending = _choices("Spending", "pocock", "obf")
Format = _choices("Format", "table", "markdown", "csv", "json", "latex", "html")
ListFormat = _choices("ListFormat", "table", "json")  # list's and show's
Test = _choices("Test", "t", "exact")
Keep = _choices("Keep", "final", "none")


def value(choice: Optional[Enum]) -> Optional[str]:
    """What the library takes for an optional choice: its value, None where it was not given."""
    return None if choice is None else choice.value


def _listed(kind: type[Enum]) -> str:
    return ", ".join(member.value for member in kind)


def _pick(kind: type[Enum], metavar: str, refusal: str, help: str, *names: str):
    """An option whose value is one of `kind`'s, refused with the line `refusal` otherwise (see `_choice`)."""
    return typer.Option(*names, metavar=metavar, parser=_choice(kind, refusal), help=help)


def _until(kind: type, metavar: str, help: str, **kwargs):
    """An option of --until-decided: unset (None) unless given."""
    return Annotated[Optional[kind], typer.Option(metavar=metavar, help=f"With --until-decided: {help}", **kwargs)]


# ---- shared --------------------------------------------------------------------------------------------------------

Run = Annotated[
    str,
    typer.Argument(metavar="RUN", help="A run folder, or a run id ('<run id>' or '<name>/<run id>') under --results."),
]
RunResults = Annotated[Path, _path(typer.Option, "DIR", "Results folder to look for a run id in.")]
LIST_REFUSAL = "--format {}: unknown format; choose table or json"  # list's and show's

# ---- run -----------------------------------------------------------------------------------------------------------

Config = Annotated[
    str,
    typer.Argument(
        metavar="CONFIG",
        autocompletion=_config_names,
        help="Config file, shipped config name (see `bnbench list`), or with --resume a run folder.",
    ),
]
RunDir = Annotated[
    Optional[Path],
    _path(typer.Argument, "RUN_DIR", "With --resume after a CONFIG: the run folder of that config to continue."),
]
Set = Annotated[
    list[str],
    typer.Option(
        "--set",
        "-s",
        metavar="PATH=VALUE",
        help="Override a field: --set training.epochs=1 (repeatable; values are YAML).",
    ),
]
Sweep = Annotated[
    list[str],
    typer.Option(
        metavar="PATH=V1,V2",
        help="Sweep a field over comma-separated YAML values, adding the axis or replacing the config's: --sweep "
        "optimizer.lr=1e-4,1e-3, --sweep 'model.hidden=[64,32],[128,64]' (repeatable: one axis each).",
    ),
]
RunTag = Annotated[
    list[str], typer.Option(metavar="NAME", help="Tag the new run (repeatable); `bnbench list --tag NAME` finds it.")
]
Note = Annotated[Optional[str], typer.Option(metavar="TEXT", help="A one-line note on the new run (list, show).")]
Seeds = Annotated[
    Optional[str],
    typer.Option(
        metavar="SEEDS",
        help="Seeds to run: --seeds 1,2,3, --seeds 0-9, --seeds 1,2,5-8. With --resume: seeds to add to the run.",
    ),
]
Device = Annotated[Optional[str], typer.Option(metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps.")]
Out = Annotated[Path, _path(typer.Option, "DIR", "Results folder; the run goes to OUT/<name>/<run id>/.")]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        metavar="N",
        help="Train this many trials at once, in worker processes (--backend local).",
    ),
]
BackendOption = Annotated[
    Backend,
    _pick(
        Backend,
        "local|ray",
        "--backend {}: expected local or ray",
        "Where trials train: local (this process, or --jobs worker processes) or ray (Ray tasks; pip install "
        "'bnbench[ray]').",
    ),
]
Address = Annotated[
    Optional[str],
    typer.Option(
        metavar="ADDRESS",
        help="With --backend ray: the Ray cluster, HOST:PORT or auto (the cluster of this machine) [default: a Ray"
        " instance of its own].",
    ),
]
GpusPerTrial = Annotated[
    Optional[float],
    typer.Option(
        metavar="GPUS",
        help="With --backend ray: GPUs each trial reserves; 0.25 packs 4 on a GPU (bookkeeping, not isolation) "
        "[default: 1 for device cuda, else 0].",
    ),
]
Resume = Annotated[
    bool,
    typer.Option(
        help="Continue a stopped run, or grow a run folder (--seeds to add, --set training.epochs=N): CONFIG is the "
        "run folder, or the config whose newest partial run to continue."
    ),
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print only notes and the verdict (run.log in the run folder always has every line)."
    ),
]
Verbose = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="-v: a line per epoch; -vv: and the tutorial's 'Loss after mini-batch N' lines.",
    ),
]
UntilDecided = Annotated[
    bool,
    typer.Option(
        "--until-decided",
        help="Add seeds in rounds of 5 until every variant is decided against the baseline (better, worse, "
        "or equivalent within --effect) by a group-sequential test, or --max-seeds is reached.",
    ),
]
MaxSeeds = _until(
    int, "N", "the most seeds to train, each training every variant (at most 10,000 trials in all) [default: 20]."
)
UntilMetric = _until(
    Tested,
    "METRIC",
    "what is decided on: test_acc, best_acc, test_loss, train_loss, or with dataset.validation val_acc or "
    "val_loss [default: test_acc].",
    parser=_choice(Tested, "--metric {}: not a tested metric; choose one of " + _listed(Tested)),
)
Alpha = _until(float, "A", "the family-wise error rate [default: 0.05].")
Margin = _until(float, "X", "also decide 'equivalent' when the difference lies within ±X (points for accuracies).")
SpendingOption = _until(
    Spending,
    "pocock|obf",
    "the alpha-spending function, pocock (stops early on large effects) or obf (O'Brien–Fleming: keeps alpha for the "
    "last look) [default: pocock].",
    parser=_choice(Spending, "--spending {}: choose pocock or obf"),
)

# ---- compare -------------------------------------------------------------------------------------------------------

Paths = Annotated[
    Optional[list[Path]],
    _path(typer.Argument, "PATH", "Results folders (searched for runs) or run folders [default: --results]."),
]
ComparedResults = Annotated[
    Path,
    _path(
        typer.Option,
        "DIR",
        "Results folder: compared when no PATH is given, and where VARIANT@RUN's run id is looked for.",
    ),
]
Latest = Annotated[
    bool,
    typer.Option("--latest", help="Only the newest run under the PATHs (or --results), on its own (not pooled)."),
]
Every = Annotated[
    bool,
    typer.Option(
        "--all", help="Each run's table in full [default: the newest run's, and a line per other run with its answer]."
    ),
]
FormatOption = Annotated[
    Format,
    _pick(
        Format,
        "FORMAT",
        "--format {}: unknown format; choose one of " + _listed(Format),
        "table, markdown, csv, json, latex or html (one self-contained page).",
        "--format",
        "-f",
    ),
]
Output = Annotated[
    Optional[Path],
    _path(typer.Option, "FILE", "Write to this file instead of printing.", "--output", "-o"),
]
Plot = Annotated[
    Optional[Path],
    _path(
        typer.Option,
        "FILE",
        "Also draw training loss and test accuracy vs step: FILE.png, .pdf or .svg (FILE alone: FILE.png); 5 "
        "runs a page (FILE-2.png, ...; a PDF holds the pages), at most the first 20 runs.",
    ),
]
Title = Annotated[
    Optional[str], typer.Option(metavar="TEXT", help="With --plot: the figure's title [default: each run's].")
]
Dpi = Annotated[
    int, typer.Option(min=10, max=600, metavar="N", help="With --plot: resolution of a PNG (PDF and SVG are vector).")
]
Windows = Annotated[
    bool,
    typer.Option(
        help="The tutorial's layout: mean loss per log_every mini-batches of one epoch, variants side by side."
    ),
]
Epoch = Annotated[Optional[int], typer.Option(min=1, metavar="N", help="Compare at this epoch [default: the last].")]
Baseline = Annotated[
    Optional[str],
    typer.Option(
        metavar="VARIANT[@RUN]",
        help="Variant to compare with [default: each run's baseline]; VARIANT@RUN: that variant of run RUN (its "
        "folder or run id) for every run, paired on the seeds both have.",
    ),
]
NoPool = Annotated[
    bool,
    typer.Option(
        "--no-pool", help="Compare every run on its own [default: runs whose configs differ only in seeds are pooled]."
    ),
]
Metrics = Annotated[
    list[str],
    typer.Option(
        "--metric",
        "-m",
        metavar="NAME",
        help="Show only these (repeatable): train_loss, test_loss, test_acc, best_acc, steps, steps_acc, seconds; "
        "val_loss, val_acc for runs with a validation split.",
    ),
]
Full = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Every statistic of every measure (the default table is the answer at a glance, in the terminal's width).",
    ),
]
TestOption = Annotated[
    Test,
    _pick(
        Test,
        "t|exact",
        "--test {}: unknown test; choose t or exact",
        "The test a decision uses: t (paired t-test: assumes normal differences; at 5 seeds the only one that "
        "can decide) or exact (sign-flip: assumes symmetric differences, needs ≥ 6 seeds). Both p-values are always "
        "shown.",
        "--test",
    ),
]
Effect = Annotated[
    Optional[float],
    typer.Option(
        "--effect",
        min=1e-9,
        max=100,
        metavar="X",
        help="Say how many seeds a test-acc difference of X points would need (80% power).",
    ),
]
PerSeed = Annotated[
    bool,
    typer.Option(
        "--per-seed",
        help="With --format csv or json: the numbers the summary is made from, a row per run x sweep point x "
        "variant x seed x measure (value, ok, the same seed's baseline value, the difference).",
    ),
]
Probes = Annotated[
    bool,
    typer.Option(
        "--probes",
        help="The probes of runs made with training.probe_every (probes.csv): per layer and measure, each "
        "variant's mean and its paired difference from the baseline; with --plot, drawn vs step (first run only).",
    ),
]

# ---- list, show, export, prune, rm, init ---------------------------------------------------------------------------

Configs = Annotated[
    Optional[Path],
    _path(typer.Option, "DIR", "Folder of configs [default: ./configs if present, else the shipped ones]."),
]
ListedResults = Annotated[Path, _path(typer.Option, "DIR", "Results folder to list runs from.")]
ListFormatOption = Annotated[
    ListFormat,
    _pick(ListFormat, "table|json", LIST_REFUSAL, "table or json (both lists, every field).", "--format", "-f"),
]
ShowFormat = Annotated[
    ListFormat,
    _pick(ListFormat, "table|json", LIST_REFUSAL, "table or json (every field).", "--format", "-f"),
]
ListTag = Annotated[
    list[str], typer.Option(metavar="NAME", help="Only the runs tagged NAME (repeatable: tagged with all of them).")
]
Tensorboard = Annotated[
    Path,
    _path(
        typer.Option,
        "DIR",
        "Write TensorBoard event files to DIR/<name>/<run id>/, a TensorBoard run per trial (pip install "
        "'bnbench[tensorboard]').",
    ),
]
KeepOption = Annotated[
    Keep,
    _pick(
        Keep,
        "final|none",
        "--keep {}: choose final (the weights only) or none",
        "final: the model weights only (no optimizer state); none: nothing.",
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")]
Folder = Annotated[Path, _path(typer.Argument, "[FOLDER]", "Where to write them.")]

# ---- tune ----------------------------------------------------------------------------------------------------------

TuneMetric = _choices("TuneMetric", "val_acc", "val_loss")
TuneConfig = Annotated[
    str,
    typer.Argument(
        metavar="CONFIG",
        autocompletion=_config_names,
        help="Config file or shipped config name (with dataset.validation); with --resume a tune folder.",
    ),
]
Grid = Annotated[
    list[str],
    typer.Option(
        metavar="PATH=V1,V2",
        help="The optimizer setting to choose per variant, values as --sweep takes them: --grid "
        "optimizer.lr=1e-4,3e-4,1e-3,3e-3,1e-2 (repeatable: the product of the axes).",
    ),
]
TuneSeeds = Annotated[
    Optional[str],
    typer.Option(metavar="SEEDS", help="Seeds the settings are chosen on, as --seeds [default: 0-2]."),
]
FinalSeeds = Annotated[
    Optional[str],
    typer.Option(
        metavar="SEEDS",
        help="Seeds of the final comparison, none of them a tuning seed, as --seeds 100-104 [default: the config's].",
    ),
]
TuneMetricOption = Annotated[
    TuneMetric,
    _pick(
        TuneMetric,
        "val_acc|val_loss",
        "--metric {}: tune chooses on the validation split; choose val_acc or val_loss",
        "The validation metric at the last epoch that chooses each variant's setting.",
    ),
]
TuneMargin = Annotated[
    Optional[float],
    typer.Option(
        metavar="X",
        help="Sensitivity: the grid values whose mean lies within X of a variant's best [default: 1.0 points of "
        "accuracy, 0.05 of loss].",
    ),
]
TunePlot = Annotated[
    Optional[Path],
    _path(
        typer.Option,
        "FILE",
        "Also draw the sensitivity (validation metric per variant across the grid): FILE.png, .pdf or .svg.",
        "--plot",
    ),
]
TuneResume = Annotated[
    bool, typer.Option(help="Continue a stopped tune (CONFIG is its folder), or show a complete one's answer.")
]
