"""`bnbench tune`'s answer as text: each variant's chosen setting, the tuned and the equal-setting verdicts side by
side (compare's own statistics, on test, of the final and shared stages), and the sensitivity table (the validation
metric across the grid, from the tuning stage)."""

from pathlib import Path
from typing import Optional

import pandas as pd

from bnbench.analysis import tuning
from bnbench.analysis.columns import PRIMARY, col
from bnbench.analysis.compare import compare_runs
from bnbench.analysis.inference import p_is
from bnbench.analysis.sentences import difference, outcome
from bnbench.analysis.summary import Comparison
from bnbench.analysis.tuning import describe, tune_scores
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.tunes import COMPARED, Tune, final_seeds
from bnbench.views.layout import Grid, render

LABEL = {"val_acc": "val acc", "val_loss": "val loss"}


def tune_output(tune: Tune, width: Optional[int]) -> str:
    """The tune's answer; stages not yet trained are said to be so."""
    config, spec = tune.config, tune.spec
    metric = spec["metric"]
    title = (
        f"{config.name} · tune {tune.dir.name} · chosen on {LABEL[metric]} at epoch {config.training.epochs}, mean "
        f"over tuning seeds {_seeds(spec['tune_seeds'])}; compared on test over seeds {_seeds(final_seeds(tune))}"
    )
    if tune.choices is None:
        return render(Grid(title, [], [], lead=[f"tuning stage: not complete; continue with: {_resume(tune)}"]), width)
    scored = tune_scores(tune)
    compared = {stage: _comparison(tune.stage_dir(stage)) for stage in COMPARED}
    lead = [_choices_line(tune, scored), *_answers(tune, compared), *_verdicts(tune, compared), *_ranges(tune, scored)]
    grid = Grid(title, *_table(tune, scored), caption=_caption(tune), lead=lead)
    return render(grid, width)


def _seeds(seeds: list[int]) -> str:
    return ",".join(map(str, seeds))


def _resume(tune: Tune) -> str:
    return f"bnbench tune --resume {tune.dir}"


def _value(x: float, metric: str) -> str:
    """An accuracy in points ('97.22'), a loss to 4 digits."""
    return f"{x * tuning.SCALE[metric]:.2f}" if metric == "val_acc" else f"{x:.4g}"


def _choices_line(tune: Tune, scored: pd.DataFrame) -> str:
    """'chosen: batchnorm optimizer.lr=0.01 (val acc 97.22; optimizer.lr at the grid's largest: widen the grid);
    plain optimizer.lr=0.003 (val acc 95.10)'."""
    metric, parts = tune.spec["metric"], []
    for row in tuning.choices(scored, tune.grid).itertuples():
        notes = [f"{LABEL[metric]} {_value(row.mean, metric)}"]
        notes += [f"{edge}: widen the grid" for edge in row.edges]
        notes += [f"{row.diverged} tuning seeds diverged at every point"] if row.diverged else []
        parts.append(f"{row.variant} {describe(tune.choices[row.variant])} ({'; '.join(notes)})")
    return "chosen: " + "; ".join(parts)


def _stages(tune: Tune) -> list[tuple[str, str]]:
    """The compared stages, each with how its variants were set."""
    own = ", ".join(f"{variant} {describe(values)}" for variant, values in tune.choices.items())
    return [("tuned", f"at each variant's own best ({own})"), ("shared", f"at the shared {_shared(tune)}")]


def _answers(tune: Tune, compared: dict[str, Optional[Comparison]]) -> list[str]:
    """The answer in two lines, the tuned and the shared verdict on the primary measure side by side: 'at each
    variant's own best: batchnorm +3.11 pts [-0.30, +6.34] (Holm p=0.25), no difference shown'."""
    lines = []
    for stage, how in _stages(tune):
        if compared[stage] is None:
            continue
        table, baseline = compared[stage].table, compared[stage].baseline
        parts = [
            f"{row['variant']} {difference(row, PRIMARY)} (Holm p{p_is(row[col(PRIMARY, 'p_holm')])}), {outcome(row)}"
            for row in table[~table.baseline.astype(bool)].to_dict("records")
        ]
        lines.append(f"{how}, {PRIMARY.replace('_', ' ')} vs {baseline}: " + "; ".join(parts))
    return lines


def _verdicts(tune: Tune, compared: dict[str, Optional[Comparison]]) -> list[str]:
    """compare's verdict lines per compared variant and stage: the tuned stage's (each at its own setting), then
    the shared's."""
    lines = []
    for stage, how in _stages(tune):
        one = compared[stage]
        lines += (
            [f"{how}: {line}" for line in [*one.decided, *one.verdicts]]
            if one
            else [f"{how}: the {stage} stage is not complete; continue with: {_resume(tune)}"]
        )
    return lines


def _shared(tune: Tune) -> str:
    config = tune.config
    return describe({path: config.get(path) for path in tune.grid})


def _comparison(run_dir: Path) -> Optional[Comparison]:
    """compare's comparison of a complete stage run (None for a run not complete)."""
    folder = RunFolder(run_dir)
    if not folder.meta_file.exists() or folder.status(folder.meta()) != "complete":
        return None
    (compared,), _ = compare_runs([run_dir], pool=False)
    return compared


def _ranges(tune: Tune, scored: pd.DataFrame) -> list[str]:
    """Per variant, the grid values whose mean is within the margin of its best: 'batchnorm good at
    optimizer.lr 0.001 to 0.01 (3 of 5 values)'."""
    spec, listed = tune.spec, tuning.points(tune.grid)
    within = f"{spec['margin']:g} {_unit(spec['metric'])}"
    lines = []
    for variant, part in scored.groupby("variant", sort=False):
        good = [listed[p] for p in part[part.good].point]
        values = ", ".join(describe(point) for point in good) if len(tune.grid) > 1 else _span(good, tune.grid)
        lines.append(f"{variant} within {within} of its best at {values} ({len(good)} of {len(listed)})")
    return ["sensitivity: " + "; ".join(lines)]


def _span(good: list[dict], grid: dict[str, list]) -> str:
    """One axis: 'optimizer.lr 0.001 to 0.01' where the good values are neighbours in the grid, else each one."""
    ((path, values),) = grid.items()
    at = [values.index(point[path]) for point in good]
    if len(at) > 1 and at == list(range(at[0], at[0] + len(at))):
        return f"{path} {_text(values[at[0]])} to {_text(values[at[-1]])}"
    return f"{path} {', '.join(_text(values[i]) for i in at)}"


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _table(tune: Tune, scored: pd.DataFrame) -> tuple[list[str], list[list[list[str]]]]:
    """Header and rows: a row per grid point, its values, then per variant the mean [95% CI] with its marks."""
    metric, listed = tune.spec["metric"], tuning.points(tune.grid)
    variants = list(dict.fromkeys(scored.variant))
    header = list(tune.grid) + [f"{v} {LABEL[metric]}" for v in variants]
    cells = {(r.variant, r.point): _cell(r, metric) for r in scored.itertuples()}
    rows = [[[_text(v)] for v in point.values()] + [cells[(v, p)] for v in variants] for p, point in enumerate(listed)]
    return header, rows


def _cell(row, metric: str) -> list[str]:
    """'97.22 [96.10, 98.34] best', '95.01 [..] good', '0.00 diverged 2/3'."""
    text = _value(row.mean, metric)
    if pd.notna(row.ci_low):
        low, high = (max(0.0, row.ci_low), min(1.0, row.ci_high)) if metric == "val_acc" else (row.ci_low, row.ci_high)
        text += f" [{_value(low, metric)}, {_value(high, metric)}]"
    mark = "best" if row.best else "good" if row.good else ""
    if row.diverged:
        mark = f"diverged {row.diverged}/{row.seeds}" + (" best" if row.best else "")
    return [f"{text} {mark}".rstrip()]


def _unit(metric: str) -> str:
    return "pts" if metric == "val_acc" else "of loss"


def _caption(tune: Tune) -> str:
    spec = tune.spec
    accuracy = spec["metric"] == "val_acc"
    return (
        f"{LABEL[spec['metric']]}: mean over {len(spec['tune_seeds'])} tuning seeds on the validation split, 95% "
        f"t-interval over seeds{', cut at 0 and 100' if accuracy else ''} (independent seeds, values near normal: "
        f"with few seeds a wide interval that rests on normality); best: chosen (ties to the value listed first; a "
        f"point where a seed diverged ranks below any where none did, a diverged seed counted at "
        f"{'0 accuracy' if accuracy else 'an infinite loss'}); good: within {spec['margin']:g} "
        f"{_unit(spec['metric'])} of the variant's best mean."
    )
