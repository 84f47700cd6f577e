"""Resuming and growing a run folder: what it holds is read back and checked (each trial's state from its
checkpoint, its rows against that state, its config against the one it began with), damage is repaired (a trial
whose rows or checkpoint are damaged is trained again from its start), and a grow (more seeds, more epochs) is
written. `runner` trains what is left."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config, diff
from bnbench.experiment.loading import parse_override, validate
from bnbench.experiment.trials import Trial, expand
from bnbench.rundir import checkpoint_files, digests, rows, search
from bnbench.rundir.drift import drift, edited
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.meta import Meta, now
from bnbench.rundir.schema import BATCHES, CUT_FILES, EPOCHS, EVALS, PROBES, ROW_FILES
from bnbench.rundir.trial_state import TrialState, finished, records, state_of
from bnbench.runner.state import Reporter, Run, Silent


def reopen(run_dir: Path, meta: Meta, config: Config, grown: Optional[Config], reporter: Reporter) -> Run:
    """The run made ready to train on (under `execute._preparing`): temporaries removed, meta.json marked running
    before any other file changes (from here on a stop leaves the run partial, never "complete"), the grow written
    (`grown`: from `grown_config`), each trial's state read and its rows repaired."""
    folder = RunFolder(run_dir)
    folder.remove_temporaries()
    meta.update(status="running", ended=None, resumed=meta.fields.resumed + [now()])
    folder.write_meta(meta)
    if grown:
        _grow(run_dir, meta, config, grown, reporter)
        config = grown
    trials = expand(config)
    found = _trial_states(run_dir, trials, meta, reporter)
    run = Run(run_dir, config, trials, meta, found.states)
    _repair_rows(run, found.losses, reporter)
    return run


def grows(run_dir: Path, seeds: Optional[list[int]] = None, epochs: Optional[int] = None) -> bool:
    """Whether `seeds`/`epochs` add anything to the run (for `--resume` of a complete run: else nothing to do)."""
    config = RunFolder(run_dir).config()
    return bool(set(seeds or []) - set(config.seeds)) or (epochs is not None and epochs != config.training.epochs)


def grown_config(run_dir: Path, config: Config, seeds: list[int], epochs: Optional[int]) -> Optional[Config]:
    """The run's config with `seeds` it lacks appended and training.epochs = `epochs` (None: nothing grows);
    what cannot grow is refused here, before anything is written."""
    added = [s for s in dict.fromkeys(seeds) if s not in config.seeds]
    current = config.training.epochs
    if epochs is not None and epochs < current:
        raise BnbenchError(
            f"--set training.epochs={epochs}: {run_dir} trains {current} epochs; a run grows but "
            f"never drops trained epochs; compare an earlier epoch with: bnbench compare {run_dir} "
            f"--epoch {epochs}"
        )
    if not added and epochs in (None, current):
        return None
    decaying = {c.optimizer.schedule for c in map(config.with_values, config.sweep_points())} & {"cosine", "linear"}
    if epochs not in (None, current) and decaying:
        raise BnbenchError(
            f"--set training.epochs={epochs}: {run_dir} decays its lr ({decaying.pop()} schedule) to 0 over "
            f"its {current} epochs, and its trained epochs followed that decay; more epochs would not be the "
            f"run a new one makes: start a new run with --set training.epochs={epochs}"
        )
    raw = config.model_dump(mode="json")
    raw["seeds"] = config.seeds + added
    raw["training"]["epochs"] = epochs or current
    grown = validate(raw, str(RunFolder(run_dir).config_file))
    expand(grown)  # a key too long for a file name is refused before anything is written
    return grown


def _grow(run_dir: Path, meta: Meta, config: Config, grown: Config, reporter: Reporter) -> None:
    """Write the grown config to meta.json (the resolved config, and the overrides, so that the source-file
    check keeps holding) and to config.yaml, in that order (`finish_grow` completes a grow stopped between)."""
    added = [s for s in grown.seeds if s not in config.seeds]
    current = config.training.epochs
    recorded = meta.overrides()
    overrides = recorded.model_dump() if recorded else {}
    if added:
        overrides["seeds"] = grown.seeds
    if grown.training.epochs != current:  # replaces an earlier grow's: the run has one epoch count
        earlier = [t for t in overrides.get("set") or [] if parse_override(t)[0] != ["training", "epochs"]]
        overrides["set"] = [*earlier, f"training.epochs={grown.training.epochs}"]
    change = {"at": now(), "seeds_added": added, "epochs": [current, grown.training.epochs]}
    meta.update(
        config=grown.model_dump(mode="json"),
        overrides=overrides,
        grown=meta.fields.grown + [change],
    )
    RunFolder(run_dir).write_meta(meta)
    RunFolder(run_dir).write_config(grown)
    what = [f"added seeds {', '.join(map(str, added))}"] * bool(added)
    what += [f"epochs {current} -> {grown.training.epochs}"] * (grown.training.epochs != current)
    reporter.note(f"{run_dir}: {'; '.join(what)}")


def finish_grow(run_dir: Path, meta: Meta, config: Config) -> Config:
    """A grow stopped between its two writes (meta.json, then config.yaml) left config.yaml as it was before the
    grow: write the grown config that meta.json holds (else the run would refuse its own config as edited)."""
    folder = RunFolder(run_dir)
    grown, changes = meta.fields.config, meta.fields.grown
    if not (isinstance(grown, dict) and changes and isinstance(changes[-1], dict)):
        return config
    last = changes[-1]
    try:
        raw = validate(grown, str(folder.meta_file)).model_dump(mode="json")
        raw["seeds"] = [s for s in raw["seeds"] if s not in last["seeds_added"]]
        raw["training"]["epochs"] = last["epochs"][0]
        before = validate(raw, str(folder.meta_file)).model_dump(mode="json")
    except (BnbenchError, KeyError, TypeError, IndexError):  # not a grow this bnbench wrote: the edit check tells
        return config
    if before != config.model_dump(mode="json") or before == grown:
        return config
    folder.write_config(validate(grown, str(folder.meta_file)))
    return folder.config()


def is_complete(run_dir: Path) -> bool:
    """A finished, intact run, for `--resume`: there is nothing to do, and nothing is written. Every trial's rows
    are checked against its checkpoint and its digests (bnbench.rundir.digests) as resuming checks them, so "nothing to
    do" never hides damage (rows cut out of a CSV or edited, a checkpoint replaced: resuming repairs them); an
    unreadable or edited config raises what resuming it would."""
    folder = RunFolder(run_dir)
    meta, config = folder.meta(), folder.config()
    if folder.status(meta) != "complete":
        return False
    refuse_if_edited(run_dir, meta, config)
    trials = expand(config)
    found = _trial_states(run_dir, trials, meta, Silent(), repair=False)
    texts, kept, lines = rows.kept_rows(run_dir, trials, {i: s.epochs for i, s in found.states.items()})
    untouched = all(
        folder.file(name).exists() and folder.read_bytes(name) == text.encode() for name, text in texts.items()
    )
    damaged = _damaged(run_dir, trials, found.states, kept, lines, found.losses, meta)
    return untouched and not damaged and not found.damaged and all(s.finished for s in found.states.values())


def latest_partial_run(out: Path, config: Config) -> Path:
    """The newest run under `out` that is not complete and was started with this resolved config (for
    `run CONFIG --resume`; a run of the same experiment with other settings is not it)."""
    folder = out / config.name
    partial = [run for run in search.runs_of(out, config.name) if run.status(run.meta()) == "partial"]
    wanted = config.model_dump(mode="json")
    configs = {run.path: _resolved(run.raw_config(), run.config_file) for run in partial}  # each read once
    for run_dir, started in configs.items():
        if started == wanted:
            return run_dir
    hint = ""
    if partial:
        hint = (
            f" (the newest partial run, {partial[0]}, has other settings: "
            f"{'; '.join(diff(configs[partial[0].path], wanted)[:3])}; resume it by its folder)"
        )
    raise BnbenchError(
        f"--resume: no partial run of '{config.name}' with this config under '{folder}'{hint}; "
        f"start one without --resume"
    )


# ---- resume checks -----------------------------------------------------------------------------------------------


@dataclass
class _Found:
    """What the checkpoints say: each trial's state, the last finite loss each checkpoint records (by trial index;
    `_damaged` checks it against the rows), and the trials whose checkpoint is damaged."""

    states: dict[int, TrialState] = field(default_factory=dict)
    losses: dict[int, Optional[float]] = field(default_factory=dict)
    damaged: set[int] = field(default_factory=set)


def _trial_states(run_dir: Path, trials: list[Trial], meta: Meta, reporter: Reporter, repair: bool = True) -> _Found:
    """Each trial's state, from its checkpoint. A trial whose checkpoint is gone or damaged (unreadable, another
    trial's, or not the one its digest records) starts over (with a note; `repair` drops a damaged one and its
    digest), unless meta.json records it finished for this config: then its rows, which `_repair_rows` checks
    against that record, are its result (a run whose checkpoints were deleted to free space stays complete), unless
    the run grew by epochs, which continue from the checkpoint."""
    recorded, digested = records(meta), digests.recorded(meta)
    found = _Found()
    for trial in trials:
        entry = digested.get(trial.key, {})
        summary, damage = _checkpoint(run_dir, trial, entry)
        if damage:
            found.damaged.add(trial.index)
            if repair:
                checkpoint_files.drop(run_dir, trial)
                weights = checkpoint_files.files(run_dir, trial)[1]
                if damage.startswith(f"{weights}:"):
                    weights.unlink()
                entry.pop("checkpoint", None)
        record = recorded.get(trial.key)
        state = state_of(summary) if summary else finished(record, trial) or TrialState()
        if summary:
            found.losses[trial.index] = summary.get("last_finite_loss")
        if state.status == "complete" and state.epochs < trial.config.training.epochs:  # the run grew by epochs
            state = TrialState(**{**vars(state), "status": "running"}) if summary else TrialState()
        begun = isinstance(record, dict) and record.get("epochs", 0) != 0
        if summary is None and not state.finished and (damage or begun):
            problem = damage or f"{checkpoint_files.files(run_dir, trial)[0]}: missing"
            reporter.note(f"{problem}: {trial.key} is trained again from its start")
        elif damage:
            reporter.note(f"{damage}: {trial.key} has finished, and its rows are checked against meta.json")
        found.states[trial.index] = state
    return found


def _checkpoint(run_dir: Path, trial: Trial, entry: dict) -> tuple[Optional[dict], Optional[str]]:
    """A trial's checkpoint summary (None: none), or why it is not to be trusted: unreadable, another trial's (a
    checkpoint records its trial's key), or not the file its digest records."""
    path = checkpoint_files.files(run_dir, trial)[0]
    damage = digests.checkpoint_damage(run_dir, entry)
    if damage:
        return None, damage
    try:
        summary = checkpoint_files.summary(run_dir, trial)
    except BnbenchError as e:
        return None, str(e)
    if summary and summary.get("key", trial.key) != trial.key:
        return None, f"{path}: the checkpoint of {summary['key']}, not of {trial.key} (swapped or copied)"
    return summary, None


def _damaged(
    run_dir: Path,
    trials: list[Trial],
    states: dict[int, TrialState],
    kept: rows.Kept,
    lines: rows.Lines,
    losses: dict[int, Optional[float]],
    meta: Meta,
) -> dict[int, str]:
    """Why each damaged trial's rows (as `rows.kept_rows` kept them: each row's epoch and line, per file) cannot be
    kept, by trial index: they are not exactly the epochs and steps of its state (its probes: one at every
    probe_every steps), their last finite loss is not its checkpoint's (a checkpoint swapped with another trial's
    has the same steps), or they are not the rows its digests record."""
    digested, wrong = digests.recorded(meta), {}
    for trial in trials:
        state = states[trial.index]
        epochs = list(range(1, state.epochs + 1))
        has = {name: found[trial.index] for name, found in kept.items()}
        batches = has.get(BATCHES.file, [])
        evals = _eval_epochs(batches, trial.config.training.eval_every)
        own = lines.get(BATCHES.file, {}).get(trial.index, [])
        fits = {
            BATCHES.file: len(batches) == state.steps and sorted(set(batches)) == epochs,
            EPOCHS.file: has.get(EPOCHS.file, []) == epochs,
            EVALS.file: has.get(EVALS.file, evals) == evals,
            PROBES.file: state.diverged_step is not None
            or _probes_fit(lines.get(PROBES.file, {}).get(trial.index, []), state.steps, trial),
        }
        short = next((name for name, fit in fits.items() if not fit), None)
        if short:
            wrong[trial.index] = (
                f"{RunFolder(run_dir).file(short)}: the rows of {trial.key} do not match its checkpoint "
                f"(truncated or edited)"
            )
        elif trial.index in losses and _last_loss(own) not in (None, _loss_text(losses[trial.index])):
            wrong[trial.index] = (
                f"{checkpoint_files.files(run_dir, trial)[0]}: its last loss {_loss_text(losses[trial.index])} is "
                f"not {trial.key}'s in batches.csv ({_last_loss(own)}): another trial's checkpoint (swapped?)"
            )
        elif state.finished and trial.key in digested:
            found = (
                digests.rows_damage(
                    RunFolder(run_dir).file(name), trial.key, digested[trial.key], _encoded(lines, name, trial)
                )
                for name in CUT_FILES
            )
            problem = next((p for p in found if p), None)
            if problem:
                wrong[trial.index] = problem
    return wrong


def _probes_fit(lines: list[str], steps: int, trial: Trial) -> bool:
    """Whether a trial's probes.csv lines are one whole probe at every `training.probe_every` steps up to `steps`,
    each of the same rows (layer, measure) once: what its checkpoint says it has, even in a run made before digests
    (a probes.csv deleted, emptied, or with rows repeated or cut)."""
    every = trial.config.training.probe_every
    probes: dict[int, list[tuple[str, str]]] = {}
    for _, step, layer, measure, _ in (line.rsplit(",", 5)[1:] for line in lines):
        if not step.isdigit():
            return False
        probes.setdefault(int(step), []).append((layer, measure))
    shapes = {tuple(rows) for rows in probes.values()}
    return (
        list(probes) == list(range(every, steps + 1, every) if every else [])
        and len(shapes) <= 1
        and all(len(set(rows)) == len(rows) for rows in probes.values())
    )


def _encoded(lines: rows.Lines, name: str, trial: Trial) -> Optional[list[bytes]]:
    """A trial's lines in one row file, as bytes (None: the file is missing)."""
    return None if name not in lines else [line.encode() for line in lines[name][trial.index]]


def _loss_text(loss) -> Optional[str]:
    """A loss as batches.csv writes it (bnbench.rundir.schema); None for none."""
    return format(loss, ".9g") if isinstance(loss, float) and math.isfinite(loss) else None


def _last_loss(lines: list[str]) -> Optional[str]:
    """The last finite loss of a trial's batches.csv lines (the last field), as written; None for none."""
    for line in reversed(lines):
        text = line.rsplit(",", 1)[-1]
        if math.isfinite(float(text)):
            return text
    return None


def _eval_epochs(batch_epochs: list[int], every: Optional[int]) -> list[int]:
    """The epoch of each evals.csv row that a trial with these batches.csv rows (the epoch of each) has: one at
    every multiple of `every` steps inside an epoch, and one at its last step."""
    epochs, end = [], 0
    for epoch in sorted(set(batch_epochs)):
        start, end = end, end + batch_epochs.count(epoch)
        inside = (end - 1) // every - start // every if every else 0
        epochs += [epoch] * (inside + 1)
    return epochs


def _repair_rows(run: Run, losses: dict[int, Optional[float]], reporter: Reporter) -> None:
    """Cut every trial's rows back to its checkpoint, then check them against it and against its digests: a trial
    whose rows are missing or damaged (a truncated or edited CSV, a deleted row file) or belong to another
    checkpoint loses its rows, checkpoint and digests and is trained again from its start, so that a resumed run
    never reports rows it does not have."""
    kept, lines = rows.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
    broken = _damaged(run.dir, run.trials, run.states, kept, lines, losses, run.meta)
    digested = digests.recorded(run.meta)
    had = {name for entry in digested.values() for name in entry}  # the row files the run's trials finished with
    for trial in (t for t in run.trials if t.index in broken):
        reporter.note(f"{broken[trial.index]}; {trial.key} is trained again from its start")
        checkpoint_files.drop(run.dir, trial)
        run.states[trial.index] = TrialState()
    if digested:  # a trial that trains on (retrained, or grown by epochs) records its digests anew when it ends
        run.meta.update(
            digests={t.key: digested[t.key] for t in run.trials if run.states[t.index].finished and t.key in digested}
        )
    if broken:
        for name in ROW_FILES:  # a deleted row file that the run had is made anew
            if not run.folder.file(name).exists() and name in had:
                rows.write_header(run.dir, run.trials, name)
        rows.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
        run.meta.update(retrained=run.meta.fields.retrained + [t.key for t in run.trials if t.index in broken])


def refuse_if_changed(run_dir: Path, meta: Meta, stored: Config) -> None:
    """Resuming with other settings than the run began with would mix two experiments: refuse when the run's
    config.yaml was edited or its source file changed (see `drift`)."""
    found = drift(run_dir, meta, stored, strict=True)
    _refuse_edited(run_dir, found.edited)
    if found.error is not None:
        raise found.error
    if found.changed:
        raise BnbenchError(
            f"{found.source}: changed since the run began ({'; '.join(found.changed)}; in the run -> "
            f"in the file now); restore it or start a new run"
        )


def refuse_if_edited(run_dir: Path, meta: Meta, stored: Config) -> None:
    """A complete run's config.yaml edited since it began is not "nothing to do": its rows are another config's."""
    _refuse_edited(run_dir, edited(meta, run_dir, stored))


def _refuse_edited(run_dir: Path, fields: list[str]) -> None:
    if fields:
        raise BnbenchError(
            f"{RunFolder(run_dir).config_file}: edited since the run began ({'; '.join(fields)}; as started -> "
            f"as now); restore it (meta.json's `config` holds the one it ran) or start a new run"
        )


def _resolved(raw: dict, source: Path) -> dict:
    """A run's stored config as this bnbench resolves it, every default written out (a run started by an older
    bnbench lacks the fields added since)."""
    return validate(raw, str(source)).model_dump(mode="json")
