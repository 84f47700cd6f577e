"""`bnbench compare --probes`: what probes.csv (engines.probes) says, per sweep point, layer and measure, at a few
points of training (the first probe step, the middle one and the last): each variant's mean over seeds, and each
variant's paired difference from the baseline over the seeds both have, with Student's t-interval
(`inference.paired_t`): a description beside no decision, so not widened for skew as a decision's interval is."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from bnbench.analysis.inference import paired_t
from bnbench.analysis.reading import KEYS, index_of, read_probes
from bnbench.errors import BnbenchError
from bnbench.rundir import search
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.schema import PROBES


@dataclass
class ProbeSummary:
    run_dir: Path
    baseline: str
    variants: list[str]  # in the config's order
    sweep: list[str]  # the sweep paths (label columns after variant and seed)
    seeds: int
    probes: pd.DataFrame  # probes.csv as read: labels, epoch, step, layer, measure, value
    table: pd.DataFrame  # per sweep point, layer, measure, step, variant: seeds, mean, pairs, diff, ci_low, ci_high


def probe_summaries(paths: list[Path], baseline: Optional[str] = None) -> list[ProbeSummary]:
    """The probe summary of every run found under `paths` that has probes.csv, newest first."""
    run_dirs = search.find_runs(paths)
    with_probes = [d for d in run_dirs if (d / PROBES.file).is_file()]
    if not with_probes:
        found = f"{len(run_dirs)} runs found, none" if run_dirs else "no runs found; none"
        raise BnbenchError(
            f"{', '.join(map(str, paths))}: {found} with probes.csv; run with --set training.probe_every=N"
        )
    return [probe_summary(d, baseline) for d in with_probes]


def probe_summary(run_dir: Path, baseline: Optional[str] = None) -> ProbeSummary:
    index = index_of(run_dir)
    config = index.config
    variants = [v.name for v in config.variants]
    baseline = baseline or config.baseline
    if baseline not in variants:
        raise BnbenchError(f"--baseline {baseline}: not a variant of {run_dir}; choose one of {', '.join(variants)}")
    sweep = index.labels[len(KEYS) :]
    probes = read_probes(run_dir)
    if probes.empty:
        raise BnbenchError(
            f"{RunFolder(run_dir).file(PROBES.file)}: no probe rows, only the header; if the run has trained past "
            f"training.probe_every ({config.training.probe_every} steps), they were lost: repair with: "
            f"bnbench run --resume {run_dir}"
        )
    rows = [
        summary
        for keys, group in probes.groupby([*sweep, "layer", "measure"], sort=False, dropna=False)
        for summary in _summaries(dict(zip([*sweep, "layer", "measure"], keys)), group, variants, baseline)
    ]
    return ProbeSummary(run_dir, baseline, variants, sweep, len(config.seeds), probes, pd.DataFrame(rows))


def _summaries(keys: dict, group: pd.DataFrame, variants: list[str], baseline: str) -> list[dict]:
    """One layer and measure of one sweep point: a row per summarised step and variant."""
    steps = sorted(group.step.unique())
    chosen = dict.fromkeys([steps[0], steps[(len(steps) - 1) // 2], steps[-1]])  # first, middle, last
    wide = group.pivot_table(index="seed", columns=["step", "variant"], values="value", aggfunc="first", dropna=False)
    rows = []
    for step in chosen:
        base = wide.get((step, baseline))
        for variant in variants:
            values = wide.get((step, variant))
            if values is None:
                continue
            values = values.dropna()
            d = (values - base).dropna() if base is not None and variant != baseline else pd.Series(dtype=float)
            t = paired_t(d.to_numpy())
            rows.append(
                keys
                | {"step": int(step), "variant": variant, "seeds": len(values)}
                | {"mean": float(values.mean()), "pairs": len(d), "diff": t["mean"]}
                | {"ci_low": t["t_low"], "ci_high": t["t_high"]}  # a description, no decision: Student's
            )
    return rows
