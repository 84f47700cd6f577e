"""Resuming and growing a run folder: what it holds is read back and checked (each trial's state from its
checkpoint, its rows against that state, its config against the one it began with), damage is repaired (a trial
whose rows or checkpoint are damaged is trained again from its start), and a grow (more seeds, more epochs) is
written. `runner` trains what is left."""

from pathlib import Path
from typing import Optional

from . import store
from .config import Config, diff, dump
from .drift import drift
from .errors import BnbenchError
from .experiment import parse_override, validate
from .run_state import Reporter, Run, Silent, TrialState, now
from .trials import Trial, expand


def reopen(run_dir: Path, meta: dict, config: Config, grown: Optional[Config], reporter: Reporter) -> Run:
    """The run made ready to train on (under `runner._preparing`): temporaries removed, meta.json marked running
    before any other file changes (from here on a stop leaves the run partial, never "complete"), the grow written
    (`grown`: from `grown_config`), each trial's state read and its rows repaired."""
    store.remove_temporaries(run_dir)
    meta.update(status="running", ended=None, resumed=store.typed_field(meta, "resumed", list, []) + [now()])
    store.write_meta(run_dir, meta)
    if grown:
        _grow(run_dir, meta, config, grown, reporter)
        config = grown
    trials = expand(config)
    run = Run(run_dir, config, trials, meta, _trial_states(run_dir, trials, meta, reporter))
    _repair_rows(run, reporter)
    return run


def grows(run_dir: Path, seeds: Optional[list[int]] = None, epochs: Optional[int] = None) -> bool:
    """Whether `seeds`/`epochs` add anything to the run (for `--resume` of a complete run: else nothing to do)."""
    config = validate(store.read_config(run_dir), str(run_dir / "config.yaml"))
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
    raw = config.model_dump(mode="json")
    raw["seeds"] = config.seeds + added
    raw["training"]["epochs"] = epochs or current
    grown = validate(raw, str(run_dir / "config.yaml"))
    expand(grown)  # a key too long for a file name is refused before anything is written
    return grown


def _grow(run_dir: Path, meta: dict, config: Config, grown: Config, reporter: Reporter) -> None:
    """Write the grown config to meta.json (the resolved config, and the overrides, so that the source-file
    check keeps holding) and to config.yaml, in that order (`finish_grow` completes a grow stopped between)."""
    added = [s for s in grown.seeds if s not in config.seeds]
    current = config.training.epochs
    overrides = dict(store.overrides(meta) or {})
    if added:
        overrides["seeds"] = grown.seeds
    if grown.training.epochs != current:  # replaces an earlier grow's: the run has one epoch count
        earlier = [t for t in overrides.get("set") or [] if parse_override(t)[0] != ["training", "epochs"]]
        overrides["set"] = [*earlier, f"training.epochs={grown.training.epochs}"]
    change = {"at": now(), "seeds_added": added, "epochs": [current, grown.training.epochs]}
    meta.update(
        config=grown.model_dump(mode="json"),
        overrides=overrides,
        grown=store.typed_field(meta, "grown", list, []) + [change],
    )
    store.write_meta(run_dir, meta)
    store.atomic_write(run_dir / "config.yaml", dump(grown))
    what = [f"added seeds {', '.join(map(str, added))}"] * bool(added)
    what += [f"epochs {current} -> {grown.training.epochs}"] * (grown.training.epochs != current)
    reporter.note(f"{run_dir}: {'; '.join(what)}")


def finish_grow(run_dir: Path, meta: dict, config: Config) -> Config:
    """A grow stopped between its two writes (meta.json, then config.yaml) left config.yaml as it was before the
    grow: write the grown config that meta.json holds (else the run would refuse its own config as edited)."""
    grown, changes = meta.get("config"), store.typed_field(meta, "grown", list, [])
    if not (isinstance(grown, dict) and changes and isinstance(changes[-1], dict)):
        return config
    last = changes[-1]
    try:
        raw = validate(grown, str(run_dir / "meta.json")).model_dump(mode="json")
        raw["seeds"] = [s for s in raw["seeds"] if s not in last["seeds_added"]]
        raw["training"]["epochs"] = last["epochs"][0]
        before = validate(raw, str(run_dir / "meta.json")).model_dump(mode="json")
    except (BnbenchError, KeyError, TypeError, IndexError):  # not a grow this bnbench wrote: the edit check tells
        return config
    if before != config.model_dump(mode="json") or before == grown:
        return config
    store.atomic_write(run_dir / "config.yaml", dump(validate(grown, str(run_dir / "meta.json"))))
    return validate(store.read_config(run_dir), str(run_dir / "config.yaml"))


def is_complete(run_dir: Path) -> bool:
    """A finished, intact run, for `--resume`: there is nothing to do, and nothing is written. Every trial's rows
    are checked against its checkpoint as resuming checks them, so "nothing to do" never hides damage (rows cut
    out of a CSV: resuming retrains those trials); an unreadable config raises what resuming it would."""
    meta = store.read_meta(run_dir)
    config = validate(store.read_config(run_dir), str(run_dir / "config.yaml"))
    if store.run_status(run_dir, meta) != "complete":
        return False
    trials = expand(config)
    states = _trial_states(run_dir, trials, meta, Silent(), repair=False)
    texts, kept = store.kept_rows(run_dir, trials, {i: s.epochs for i, s in states.items()})
    untouched = all(
        (run_dir / name).exists() and store.read_regular(run_dir / name) == text.encode()
        for name, text in texts.items()
    )
    return untouched and not _mismatched(trials, states, kept) and all(s.finished for s in states.values())


def latest_partial_run(out: Path, config: Config) -> Path:
    """The newest run under `out` that is not complete and was started with this resolved config (for
    `run CONFIG --resume`; a run of the same experiment with other settings is not it)."""
    folder = out / config.name
    runs = (
        sorted(
            (p for p in folder.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file()), reverse=True
        )
        if folder.is_dir()
        else []
    )
    partial = [r for r in runs if store.run_status(r, store.read_meta(r)) == "partial"]
    wanted = config.model_dump(mode="json")
    configs = {
        run_dir: _resolved(store.read_config(run_dir), run_dir / "config.yaml")  # each read once
        for run_dir in partial
    }
    for run_dir, started in configs.items():
        if started == wanted:
            return run_dir
    hint = ""
    if partial:
        hint = (
            f" (the newest partial run, {partial[0]}, has other settings: "
            f"{'; '.join(diff(configs[partial[0]], wanted)[:3])}; resume it by its folder)"
        )
    raise BnbenchError(
        f"--resume: no partial run of '{config.name}' with this config under '{folder}'{hint}; "
        f"start one without --resume"
    )


# ---- resume checks -----------------------------------------------------------------------------------------------


def _trial_states(
    run_dir: Path, trials: list[Trial], meta: dict, reporter: Reporter, repair: bool = True
) -> dict[int, TrialState]:
    """Each trial's state, from its checkpoint. A trial whose checkpoint is gone or damaged starts over (with a
    note; `repair` drops a damaged one), unless meta.json records it finished for this config: then its rows,
    which `_repair_rows` checks against that record, are its result (a run whose checkpoints were deleted to
    free space stays complete)."""
    recorded = _records(meta)
    states = {}
    for trial in trials:
        try:
            summary, damage = store.checkpoint_summary(run_dir, trial), None
        except BnbenchError as e:
            summary, damage = None, str(e)
            if repair:
                store.drop_checkpoint(run_dir, trial)
        record = recorded.get(trial.key)
        state = TrialState(**summary) if summary else _finished(record, trial) or TrialState()
        if state.status == "complete" and state.epochs < trial.config.training.epochs:  # the run grew by epochs
            state.status = "running"
        begun = isinstance(record, dict) and record.get("epochs", 0) != 0
        if summary is None and not state.finished and (damage or begun):
            problem = damage or f"{run_dir / 'checkpoints' / trial.key}.pt: missing"
            reporter.note(f"{problem}: {trial.key} is trained again from its start")
        elif damage:
            reporter.note(f"{damage}: {trial.key} has finished, and its rows are checked against meta.json")
        states[trial.index] = state
    return states


def _records(meta: dict) -> dict:
    """meta.json's record of each trial, by key."""
    return {r.get("key"): r for r in store.typed_field(meta, "trials", list, []) if isinstance(r, dict)}


def finished_trials(trials: list[Trial], meta: dict) -> list[Trial]:
    """The trials that meta.json records as finished for this config (what `bnbench prune` may prune)."""
    recorded = _records(meta)
    return [trial for trial in trials if _finished(recorded.get(trial.key), trial)]


def _finished(record: Optional[dict], trial: Trial) -> Optional[TrialState]:
    """meta.json's record of a trial that finished all of this config's epochs (or diverged), else None."""
    try:
        state = TrialState(**{k: record[k] for k in vars(TrialState())})
    except (TypeError, KeyError):  # no record, or not one this bnbench wrote
        return None
    done = state.status == "diverged" or (state.status == "complete" and state.epochs >= trial.config.training.epochs)
    return state if done and isinstance(state.epochs, int) and isinstance(state.steps, int) else None


def _mismatched(
    trials: list[Trial], states: dict[int, TrialState], kept: dict[str, dict[int, list[int]]]
) -> list[Trial]:
    """The trials whose rows (each row's epoch, per file, as `store.kept_rows` kept them) are not exactly the
    epochs and steps of their state."""
    wrong = []
    for trial in trials:
        state = states[trial.index]
        epochs = list(range(1, state.epochs + 1))
        rows = {name: found[trial.index] for name, found in kept.items()}
        batches = rows.get("batches.csv", [])
        evals = _eval_epochs(batches, trial.config.training.eval_every)
        if (
            len(batches) != state.steps
            or sorted(set(batches)) != epochs
            or rows.get("epochs.csv", []) != epochs
            or rows.get("evals.csv", evals) != evals
        ):
            wrong.append(trial)
    return wrong


def _eval_epochs(batch_epochs: list[int], every: Optional[int]) -> list[int]:
    """The epoch of each evals.csv row that a trial with these batches.csv rows (the epoch of each) has: one at
    every multiple of `every` steps inside an epoch, and one at its last step."""
    epochs, end = [], 0
    for epoch in sorted(set(batch_epochs)):
        start, end = end, end + batch_epochs.count(epoch)
        inside = (end - 1) // every - start // every if every else 0
        epochs += [epoch] * (inside + 1)
    return epochs


def _repair_rows(run: Run, reporter: Reporter) -> None:
    """Cut every trial's rows back to its checkpoint, then check them against it: a trial whose rows are missing
    or damaged (a truncated or edited CSV) loses its rows and checkpoint and is trained again from its start, so
    that a resumed run never reports rows it does not have."""
    kept = store.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
    broken = _mismatched(run.trials, run.states, kept)
    for trial in broken:
        reporter.note(
            f"{run.dir}: the rows of {trial.key} do not match its checkpoint (a CSV was truncated or "
            f"edited); it is trained again from its start"
        )
        store.drop_checkpoint(run.dir, trial)
        run.states[trial.index] = TrialState()
    if broken:
        store.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
        run.meta["retrained"] = store.typed_field(run.meta, "retrained", list, []) + [t.key for t in broken]


def refuse_if_changed(run_dir: Path, meta: dict, stored: Config) -> None:
    """Resuming with other settings than the run began with would mix two experiments: refuse when the run's
    config.yaml was edited or its source file changed (see `drift`)."""
    found = drift(run_dir, meta, stored, strict=True)
    if found.edited:
        raise BnbenchError(
            f"{run_dir / 'config.yaml'}: edited since the run began ({'; '.join(found.edited)}; "
            f"as started -> as now); restore it or start a new run"
        )
    if found.error is not None:
        raise found.error
    if found.changed:
        raise BnbenchError(
            f"{found.source}: changed since the run began ({'; '.join(found.changed)}; in the run -> "
            f"in the file now); restore it or start a new run"
        )


def _resolved(raw: dict, source: Path) -> dict:
    """A run's stored config as this bnbench resolves it, every default written out (a run started by an older
    bnbench lacks the fields added since)."""
    return validate(raw, str(source)).model_dump(mode="json")
