"""`bnbench show RUN`: what one run folder holds, as plain data (views.show_text renders it).

Where the run's config came from and how it differs from that file (meta.json keeps the source file, the
overrides and the resolved config the run started with), its status, engine and device, each trial's progress and
final numbers (from the CSVs, read and checked as `compare` reads them), and the verdict lines of its comparison.
"""

from pathlib import Path
from typing import Optional

import numpy as np

from bnbench.analysis import compare_run, load_run
from bnbench.analysis.decisions import as_typed, overrides_text
from bnbench.analysis.reading import diverged_at, probe_damage
from bnbench.analysis.row_checks import spans
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.rundir import checkpoints, digests, search
from bnbench.rundir.drift import drift
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta
from bnbench.rundir.tags import note_of, tags_of
from bnbench.rundir.trial_state import trial_status
from bnbench.rundir.tunes import is_tune

TRIAL_NUMBERS = ["train_loss", "test_loss", "test_acc"]


def find(ref: str, results: Path) -> Path:
    """The run folder `ref` names: a run folder, or a run id ('<run id>' or '<name>/<run id>') under `results`."""
    path = Path(ref)
    if RunFolder(path).has_meta():
        return path
    if is_tune(path):
        raise BnbenchError(
            f"{ref}: a tune folder, which holds three runs; show one of them ({ref}/tuned, shared or tuning), or "
            f"the tune's answer: bnbench tune --resume {ref}"
        )
    if path.is_dir():
        raise BnbenchError(f"{ref}: not a run folder (no meta.json); pass RESULTS/<name>/<run id> or a run id")
    if not results.is_dir():
        raise BnbenchError(f"{ref}: not a run folder, and --results {results} does not exist to look for a run id")
    return search.find_run(ref, search.find_runs([results]))


def summary(run_dir: Path) -> dict:
    """Everything `show` prints about a run, JSON-ready."""
    folder = RunFolder(run_dir)
    meta, config = folder.meta(), folder.config()
    recorded = meta.fields
    out = {
        "run": str(run_dir),
        "experiment": config.name,
        "status": folder.status(meta),
        "started": recorded.started,
        "ended": recorded.ended,
        "resumed": recorded.resumed,
        "engine": recorded.engine,
        "device": recorded.device,
        "device_name": recorded.device_name,
        "source": recorded.source,
        "overrides": overrides_text(meta.overrides()),
        "tags": tags_of(meta),
        "note": note_of(meta),
        "checkpoints": checkpoints.ALLOWS[checkpoints.kept(config, meta)],
        **_data(config, meta),
        **_config_changes(run_dir, meta, config),
    }
    out |= as_typed(meta)  # a sequential run: as the user ran it
    try:
        results = load_run(run_dir)
    except BnbenchError as e:
        problem = str(e).removesuffix(f"; {digests.repair(run_dir)}")  # `show` says the repair on a line of its own
        return out | {"trials": [], "verdicts": [], "problem": problem} | _next(out, problem)
    out["trials"] = _trials(results)
    out |= _next(out, _missing(out["trials"], recorded.trials) or _unread_damage(run_dir, meta))
    try:
        c = compare_run(results)
        out["verdicts"], out["problem"] = c.decided or c.verdicts, None
    except BnbenchError as e:
        out["verdicts"], out["problem"] = [], str(e)
        return out
    rounds_left = c.sequential is not None and not c.sequential[1]["finished"]
    if rounds_left and out["status"] == "complete" and not out["next"]:  # stopped between two rounds
        out["next"] = f"bnbench run --resume {out['run']}"
    return out


def _data(config: Config, meta: Meta) -> dict:
    """{"data": what the run trains and evaluates on beyond the whole data set (dataset.limit, validation,
    test_limit, augment; as meta.json's `data` records the subsets)}, or {} for a run that uses none of them."""
    d, drawn = config.dataset, meta.fields.data if isinstance(meta.fields.data, dict) else {}

    def count(name: str) -> str:
        entry = drawn.get(name)
        return str(entry.get("count", "?")) if isinstance(entry, dict) else "?"

    parts = [f"{count('limit')} training examples kept (dataset.limit)"] * (d.limit is not None)
    if d.validation is not None:
        parts.append(f"{count('validation')} held out of training for validation (dataset.validation: {d.validation})")
    parts += [f"{count('test_limit')} test examples kept (dataset.test_limit)"] * (d.test_limit is not None)
    parts += [f"augmented by {', '.join(d.augment)} (dataset.augment)"] * bool(d.augment)
    return {"data": "; ".join(parts)} if parts else {}


def _missing(trials: list[dict], recorded) -> Optional[str]:
    """Which trials' rows fall short of a complete run's: unfinished, or fewer steps than meta.json records for
    them (its list is in the same trial order)."""
    recorded = recorded if isinstance(recorded, list) and len(recorded) == len(trials) else [{}] * len(trials)
    short = [
        f"{t['variant']}-s{t['seed']}"
        for t, r in zip(trials, recorded)
        if t["status"] not in ("complete", "diverged")
        or (isinstance(r, dict) and isinstance(r.get("steps"), int) and r["steps"] != t["steps"])
    ]
    if not short:
        return None
    named = ", ".join(short[:4]) + ", ..." * (len(short) > 4)
    return f"the rows of {len(short)} trial{'s' * (len(short) > 1)} ({named}) fall short of what meta.json records"


def _unread_damage(run_dir: Path, meta: Meta) -> Optional[str]:
    """Damage to what `load_run` does not read, against the digests the run's trials recorded (bnbench.rundir.digests):
    a kept checkpoint's type and size (reading every checkpoint whole is resuming's), and probes.csv."""
    for entry in digests.recorded(meta).values():
        problem = digests.checkpoint_damage(run_dir, entry, whole=False)
        if problem:
            return problem
    return probe_damage(run_dir)


def _next(out: dict, problem: Optional[str]) -> dict:
    """`damage`: why a run that says complete does not hold a complete run's rows (None: it does, or it is not
    complete); `next`: the command that continues (partial) or repairs (damaged) it, else None."""
    damaged = out["status"] == "complete" and bool(problem)
    resumable = damaged or out["status"] == "partial"
    return {"damage": problem if damaged else None, "next": f"bnbench run --resume {out['run']}" if resumable else None}


def _config_changes(run_dir: Path, meta: Meta, config: Config) -> dict:
    """`from_source`: fields where the run's resolved config differs from its source file (what the overrides
    changed), as 'field: in the file -> in the run'; `source_state`: whether the file is as the run began
    ('unchanged'), or why not; `edited`: fields of config.yaml edited since the run began."""
    found = drift(run_dir, meta, config)
    return {"from_source": found.from_source, "source_state": found.source_state, "edited": found.edited}


def _trials(results) -> list[dict]:
    """Per trial, in the runner's order: its labels, status, epochs, steps and seconds so far, and the numbers of
    its last finished epoch."""
    trials = results.trials
    b, e = results.batches, results.epochs
    spans_b, spans_e = (spans(f, trials.size) for f in (b, e))
    diverged = ~np.isnan(diverged_at({c: b[c].to_numpy() for c in ("trial", "step", "loss")}, trials.size))
    labels = {number: key for key, number in trials.numbers.items()}
    needed = trials.epochs_needed
    val = ["val_acc"] * ("val_acc" in e)  # a run with a validation split
    rows = []
    for k in range(trials.size):
        own_b, own_e = b.iloc[spans_b[k] : spans_b[k + 1]], e.iloc[spans_e[k] : spans_e[k + 1]]
        variant, seed, *values = labels[k]
        epochs = int(own_e.epoch.max()) if len(own_e) else 0
        status = trial_status(epochs, int(needed[k]), bool(diverged[k]), len(own_b) > 0, results.status == "running")
        last = own_e.iloc[-1] if len(own_e) else None
        rows.append(
            {
                "variant": variant,
                "seed": int(seed),
                **dict(zip(trials.config.sweep, values)),
                "status": status,
                "epochs": epochs,
                "epochs_total": int(needed[k]),
                "steps": int(own_b.step.max()) if len(own_b) else 0,
                "seconds": float(own_e.seconds.sum()) if len(own_e) else 0.0,
                **{
                    n: None if last is None or np.isnan(last[n]) else float(last[n]) * (100 if n.endswith("acc") else 1)
                    for n in TRIAL_NUMBERS + val
                },
            }
        )
    return rows
