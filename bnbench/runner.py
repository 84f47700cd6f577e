"""Running an experiment: trials -> data + model -> train -> store; where units train is a backend's business
(`bnbench.backends`: this process, worker processes).

Backends only train; they hand back progress, and each finished epoch's results with the model/optimizer state,
to this process, which alone writes the run folder (rows first, then the checkpoint, then meta.json).
A trial's outcome depends only on its config and seed, never on where or in what order it runs.
"""
import itertools
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Optional, Protocol

import numpy as np
import torch

from . import backends, stopping, store
from .config import Config, diff, dump
from .experiment import parse_override, validate
from .data import Dataset, load_dataset
from .drift import drift
from .errors import BnbenchError, Interrupted
from .graph import unsupported as graph_unsupported
from .log import RunLog
from .models import build_model
from .stacked import StackedTrainer
from .stacked import unsupported as stacked_unsupported
from .train import EpochResult, Progress, resolve_device
from .trials import Trial, expand


class Reporter(Protocol):
    def loading(self, what: str, done: int, total: int) -> None: ...
    def started(self, run_dir: Path, trials: list[Trial], done: dict[int, int], train_size: int) -> None: ...
    def progress(self, p: Progress) -> None: ...
    def epoch_done(self, trial: Trial, result: EpochResult) -> None: ...
    def note(self, message: str) -> None: ...


class Silent:
    def loading(self, what, done, total): pass
    def started(self, run_dir, trials, done, train_size): pass
    def progress(self, p): pass
    def epoch_done(self, trial, result): pass
    def note(self, message): pass


@dataclass
class TrialState:
    """What the run folder says about one trial (from its checkpoint)."""
    epochs: int = 0
    steps: int = 0
    seconds: float = 0.0
    diverged_step: Optional[int] = None
    last_finite_loss: Optional[float] = None
    status: str = "pending"

    def record(self, result: EpochResult, epochs_total: int) -> None:
        self.epochs, self.steps = result.epoch, self.steps + len(result.losses)
        self.seconds += result.seconds
        finite = result.losses[np.isfinite(result.losses)]
        if len(finite):
            self.last_finite_loss = float(finite[-1])
        if result.diverged_step is not None:
            self.diverged_step = result.diverged_step
        self.status = store.trial_status(result.epoch, epochs_total, result.diverged_step is not None, True, True)

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "diverged")


@dataclass
class Run:
    dir: Path
    config: Config
    trials: list[Trial]
    meta: dict
    states: dict[int, TrialState] = field(default_factory=dict)


# ---- public entry points -----------------------------------------------------------------------------------------

def run_experiment(config: Config, source: Path, out: Path, *, overrides: dict,
                   dispatch: backends.Dispatch = backends.Dispatch(), argv: Optional[list[str]] = None,
                   reporter: Reporter = Silent()) -> Path:
    """Train every trial of `config` into a new run folder under `out/<name>/`; returns the folder."""
    with _preparing(None):
        device = resolve_device(config.device)
        data = load_dataset(config.dataset, reporter.loading)
        trials = expand(config)
        _check_models(trials, data)
        engine, note = choose_engine(config, device), engine_note(config, requested_engine(config, device))
        meta = _environment(device) | {"source": str(source.resolve()), "overrides": overrides,
                                       "command": argv or [], "config": config.model_dump(mode="json"),
                                       "started": _now(), "ended": None, "status": "running", "engine_note": note}
        run_dir, lock = _create_run_dir(out, config, trials, meta)
    log = RunLog(run_dir, reporter)
    if note:
        log.note(note)
    try:
        run = Run(run_dir, config, trials, meta, {t.index: TrialState() for t in trials})
        _execute(run, data, device, engine, dispatch, log)
    finally:
        log.close()
        lock.release()
    return run_dir


def _create_run_dir(out: Path, config: Config, trials: list[Trial], meta: dict) -> tuple[Path, store.RunLock]:
    """The run folder, locked, with config.yaml, meta.json and the CSV headers: written in a hidden sibling and
    renamed into place, so that a folder under its run id is always complete (an early Ctrl-C leaves none)."""
    staging, run_dir, lock = store.stage_run_dir(out, config.name)
    try:
        store.atomic_write(staging / "config.yaml", dump(config))
        store.write_meta(staging, meta | {"trials_done": 0, "trials_total": len(trials)})
        for name, columns in store.ROW_FILES.items():
            store.atomic_write(staging / name, store.header(trials, columns))
        os.rename(staging, run_dir)
        lock.moved(run_dir)
        return run_dir, lock
    except BaseException as e:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise BnbenchError(f"--out {out}: cannot write the run folder ({e.strerror or e}); free space or "
                               f"choose another folder") from None
        raise


def _check_models(trials: list[Trial], data: Dataset) -> None:
    """Build each distinct model once, so that a model that cannot fit the data fails before a run folder exists."""
    for trial in {(t.variant.name, str(t.config.model)): t for t in trials}.values():
        build_model(trial.config.model, trial.variant, data.input_shape, data.num_classes, trial.seed)


def resume_experiment(run_dir: Path, *, dispatch: backends.Dispatch = backends.Dispatch(),
                      argv: Optional[list[str]] = None, reporter: Reporter = Silent(),
                      seeds: Optional[list[int]] = None, epochs: Optional[int] = None) -> Path:
    """Continue a stopped run: finished trials are kept, others restart from their last finished epoch; a trial
    whose rows or checkpoint are damaged or missing is trained again from its start.

    `seeds` and `epochs` grow the run: the trials of seeds it lacks, and the epochs past every trial's last one,
    are trained into the same folder, which then holds what one run started with them would (a trial's numbers
    depend only on its config and seed, and its checkpoint continues exactly: tested)."""
    meta = store.read_meta(run_dir)
    config = validate(store.read_config(run_dir), str(run_dir / "config.yaml"))
    lock = store.RunLock(run_dir).acquire()
    log = None
    try:
        config = _finish_grow(run_dir, meta, config)
        _refuse_if_changed(run_dir, meta, config)
        grown = _grown(run_dir, config, seeds or [], epochs)
        log = RunLog(run_dir, reporter)
        with _preparing(run_dir):
            store.remove_temporaries(run_dir)
            # before any file changes: from here on a stop leaves the run partial, never "complete"
            meta.update(status="running", ended=None,
                        resumed=store.typed_field(meta, "resumed", list, []) + [_now()])
            store.write_meta(run_dir, meta)
            if grown:
                _grow(run_dir, meta, config, grown, log)
                config = grown
            trials = expand(config)
            run = Run(run_dir, config, trials, meta, _trial_states(run_dir, trials, meta, log))
            _repair_rows(run, log)
            data = load_dataset(config.dataset, reporter.loading)
        device = resolve_device(config.device)
        _execute(run, data, device, choose_engine(config, device), dispatch, log)
    finally:
        if log:
            log.close()
        lock.release()
    return run_dir


@contextmanager
def _preparing(run_dir: Optional[Path]):
    """Before training, while a run folder is made (`run_dir` None) or made ready to resume: Ctrl-C, SIGTERM, a
    full disk or a lost mount end the command with one line that says what to do (a new run has written nothing;
    a resumed one is recorded as not complete before it changes anything)."""
    then = (f"before training; nothing finished is lost. Resume with: bnbench run --resume {run_dir}" if run_dir
            else "before training began; no run folder was made")
    try:
        with _sigterm_as_interrupt():
            yield
    except _Terminated:
        raise Interrupted(f"terminated (SIGTERM) {then}", 143) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted {then}") from None
    except OSError as e:
        if run_dir is None:
            raise
        raise BnbenchError(f"{run_dir}: cannot write ({e.strerror or e}); free space or fix the folder, then "
                           f"resume with: bnbench run --resume {run_dir}") from None


def grows(run_dir: Path, seeds: Optional[list[int]] = None, epochs: Optional[int] = None) -> bool:
    """Whether `seeds`/`epochs` add anything to the run (for `--resume` of a complete run: else nothing to do)."""
    config = validate(store.read_config(run_dir), str(run_dir / "config.yaml"))
    return bool(set(seeds or []) - set(config.seeds)) or (epochs is not None and epochs != config.training.epochs)


def _grown(run_dir: Path, config: Config, seeds: list[int], epochs: Optional[int]) -> Optional[Config]:
    """The run's config with `seeds` it lacks appended and training.epochs = `epochs` (None: nothing grows);
    what cannot grow is refused here, before anything is written."""
    added = [s for s in dict.fromkeys(seeds) if s not in config.seeds]
    current = config.training.epochs
    if epochs is not None and epochs < current:
        raise BnbenchError(f"--set training.epochs={epochs}: {run_dir} trains {current} epochs; a run grows but "
                           f"never drops trained epochs; compare an earlier epoch with: bnbench compare {run_dir} "
                           f"--epoch {epochs}")
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
    check keeps holding) and to config.yaml, in that order (`_finish_grow` completes a grow stopped between)."""
    added = [s for s in grown.seeds if s not in config.seeds]
    current = config.training.epochs
    overrides = dict(store.overrides(meta) or {})
    if added:
        overrides["seeds"] = grown.seeds
    if grown.training.epochs != current:  # replaces an earlier grow's: the run has one epoch count
        earlier = [t for t in overrides.get("set") or [] if parse_override(t)[0] != ["training", "epochs"]]
        overrides["set"] = [*earlier, f"training.epochs={grown.training.epochs}"]
    change = {"at": _now(), "seeds_added": added, "epochs": [current, grown.training.epochs]}
    meta.update(config=grown.model_dump(mode="json"), overrides=overrides,
                grown=store.typed_field(meta, "grown", list, []) + [change])
    store.write_meta(run_dir, meta)
    store.atomic_write(run_dir / "config.yaml", dump(grown))
    what = [f"added seeds {', '.join(map(str, added))}"] * bool(added)
    what += [f"epochs {current} -> {grown.training.epochs}"] * (grown.training.epochs != current)
    reporter.note(f"{run_dir}: {'; '.join(what)}")


def _finish_grow(run_dir: Path, meta: dict, config: Config) -> Config:
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
    untouched = all((run_dir / name).exists() and store.read_regular(run_dir / name) == text.encode()
                    for name, text in texts.items())
    return (untouched and not _mismatched(trials, states, kept) and all(s.finished for s in states.values()))


def latest_partial_run(out: Path, config: Config) -> Path:
    """The newest run under `out` that is not complete and was started with this resolved config (for
    `run CONFIG --resume`; a run of the same experiment with other settings is not it)."""
    folder = out / config.name
    runs = sorted((p for p in folder.iterdir() if not p.name.startswith(".") and (p / "meta.json").is_file()),
                  reverse=True) if folder.is_dir() else []
    partial = [r for r in runs if store.run_status(r, store.read_meta(r)) == "partial"]
    wanted = config.model_dump(mode="json")
    configs = {run_dir: _resolved(store.read_config(run_dir), run_dir / "config.yaml")  # each read once
               for run_dir in partial}
    for run_dir, started in configs.items():
        if started == wanted:
            return run_dir
    hint = ""
    if partial:
        hint = (f" (the newest partial run, {partial[0]}, has other settings: "
                f"{'; '.join(diff(configs[partial[0]], wanted)[:3])}; resume it by its folder)")
    raise BnbenchError(f"--resume: no partial run of '{config.name}' with this config under '{folder}'{hint}; "
                       f"start one without --resume")


# ---- execution ---------------------------------------------------------------------------------------------------

def _execute(run: Run, data: Dataset, device: torch.device, engine: str, dispatch: backends.Dispatch,
             reporter: Reporter) -> None:
    pending = [t for t in run.trials if not run.states[t.index].finished]
    units = _units(run, pending, engine)
    run.meta["engine"] = engine
    backend = backends.choose(dispatch, len(units), reporter.note)
    resume = f"bnbench run --resume {run.dir}"
    with _sigterm_as_interrupt():  # later signals are ignored while the stop is recorded
        try:
            store.write_meta(run.dir, _meta(run))
            reporter.started(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()}, len(data.train.y))
            backend.train(backends.Job(run.dir, run.config, data, device, engine), units, _Recorder(run, reporter))
            left = [t.key for t in run.trials if not run.states[t.index].finished]
            if left:
                raise RuntimeError(f"bnbench: trials left untrained at the end of the run: {', '.join(left)}")
            store.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
        except _Terminated:
            _stopped(run, "partial")
            raise Interrupted(f"terminated (SIGTERM); nothing finished is lost. Resume with: {resume}",
                              143) from None
        except KeyboardInterrupt:
            _stopped(run, "partial")
            raise Interrupted(f"interrupted; nothing finished is lost. Resume with: {resume}") from None
        except OSError as e:  # writing the run folder failed: a full disk, a lost mount
            _stopped(run, "partial")
            raise BnbenchError(f"{run.dir}: cannot write ({e.strerror or e}); every finished epoch is saved: free "
                               f"space or fix the folder, then resume with: {resume}") from None
        except backends.WorkerDied as e:
            _stopped(run, "partial")
            raise BnbenchError(f"{e}; nothing finished is lost. Resume with: {resume}") from None
        except BnbenchError:  # the user can fix it (a factory that builds another model on resume): resumable
            _stopped(run, "partial")
            raise
        except BaseException:
            _stopped(run, "failed")
            raise
    run.meta.update(status="complete", ended=_now())
    store.write_meta(run.dir, _meta(run))


def _stopped(run: Run, status: str) -> None:
    """Record how the run ended, if the folder can still be written (it may be why it stopped)."""
    run.meta.update(status=status, ended=_now())
    try:
        store.write_meta(run.dir, _meta(run))
    except OSError:
        pass


class _Terminated(Exception):
    """SIGTERM (what Slurm and Kubernetes send before killing a job), raised in the main thread."""


@contextmanager
def _sigterm_as_interrupt():
    """Stop on SIGTERM as on Ctrl-C: meta.json says partial and the run resumes. The first of them stops the run;
    the ones after it are ignored while it stops (ending the workers, recording the run), so that a second Ctrl-C
    cannot cut the stop short and print a traceback from the middle of it; in the `bnbench` command, to the end of
    its process (`stopping.process_ends_with_run`). A signal this process was started ignoring (nohup, a
    background job) stays ignored. Only in the main thread (where Python delivers signals); elsewhere the
    defaults stay."""
    taken = []

    def handler(signum, frame):
        if not taken:
            taken.append(signum)
            raise KeyboardInterrupt if signum == signal.SIGINT else _Terminated()

    try:
        previous = {s: signal.signal(s, handler) for s in stopping.SIGNALS if signal.getsignal(s) != signal.SIG_IGN}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        ignore = taken and stopping.process_ends_with_run
        for s, before in previous.items():
            signal.signal(s, signal.SIG_IGN if ignore else before)


def choose_engine(config: Config, device: torch.device) -> str:
    """The engine that trains this run: the one asked for (`requested_engine`), or eager where that one cannot
    train the model (`engine_note` says why, in meta.json)."""
    wanted = requested_engine(config, device)
    return "eager" if engine_note(config, wanted) else wanted


def requested_engine(config: Config, device: torch.device) -> str:
    """`training.engine`, with auto resolved: graph on CUDA (adam/adamw), else eager.

    On the CPU eager is about as fast per trial as a stacked group of 6 or more trials (README, *Speed*), and
    --jobs multiplies eager's throughput by the cores; so stacked is opted into, not chosen.
    """
    engine = config.training.engine
    if engine == "auto":
        return "graph" if device.type == "cuda" and config.optimizer.name != "sgd" else "eager"
    if engine == "graph" and device.type != "cuda":
        raise BnbenchError(f"training.engine: graph needs a CUDA device, not '{device}'; use eager or stacked")
    if engine == "graph" and config.optimizer.name == "sgd":
        raise BnbenchError("training.engine: graph supports adam and adamw; use eager or stacked for sgd")
    return engine


def engine_note(config: Config, engine: str) -> str | None:
    """Why `engine` cannot train this config's model, so that eager trains it instead (for meta.json); None if it
    can. (The eager engine's own hand-written MLP backward picks itself per model: `direct.supported`.)"""
    unsupported = {"graph": graph_unsupported, "stacked": stacked_unsupported}.get(engine)
    reason = unsupported(config) if unsupported else None
    return f"{engine} -> eager: {reason}" if reason else None


def _units(run: Run, pending: list[Trial], engine: str) -> list[list[Trial]]:
    """What one trainer trains at once: one trial, or for the stacked engine a group of compatible trials that
    have finished the same number of epochs (a resumed run may have some trials an epoch ahead)."""
    if engine != "stacked":
        return [[t] for t in pending]
    epochs = lambda t: run.states[t.index].epochs  # noqa: E731
    return [list(unit) for group in StackedTrainer.compatible(pending)
            for _, unit in itertools.groupby(sorted(group, key=epochs), key=epochs)]

@dataclass
class _Recorder:
    """What the backend hands back, written down: rows, then checkpoint, then meta, so that a crash between any
    two leaves a consistent, resumable folder."""
    run: Run
    reporter: Reporter
    fell_back: bool = False  # whether a trial's engine failed and eager trained on (told once a run)

    def progress(self, p: Progress) -> None:
        self.reporter.progress(p)

    def epoch_done(self, index: int, result: EpochResult, state: bytes) -> None:
        run, trial = self.run, self.run.trials[index]
        trial_state = run.states[index]
        store.append_epoch(run.dir, trial, result, first_step=trial_state.steps)
        trial_state.record(result, trial.config.training.epochs)
        store.save_checkpoint(run.dir, trial, state, vars(trial_state))
        if result.fallback:
            self._fallback(trial, result.fallback)
        store.write_meta(run.dir, _meta(run))
        self.reporter.epoch_done(trial, result)

    def _fallback(self, trial: Trial, why: str) -> None:
        """meta.json's `engine_fallback` names each trial whose engine failed (then eager trained it on); the first
        is a note, as the others most likely failed alike."""
        self.run.meta.setdefault("engine_fallback", {})[trial.key] = why
        if not self.fell_back:
            self.reporter.note(f"{trial.key}: {why}; eager trains it on from its last finished epoch (meta.json's "
                               f"engine_fallback lists every trial this happens to)")
        self.fell_back = True


# ---- resume checks -----------------------------------------------------------------------------------------------

def _trial_states(run_dir: Path, trials: list[Trial], meta: dict, reporter: Reporter,
                  repair: bool = True) -> dict[int, TrialState]:
    """Each trial's state, from its checkpoint. A trial whose checkpoint is gone or damaged starts over (with a
    note; `repair` drops a damaged one), unless meta.json records it finished for this config: then its rows,
    which `_repair_rows` checks against that record, are its result (a run whose checkpoints were deleted to
    free space stays complete)."""
    recorded = {r.get("key"): r for r in store.typed_field(meta, "trials", list, []) if isinstance(r, dict)}
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


def _finished(record: Optional[dict], trial: Trial) -> Optional[TrialState]:
    """meta.json's record of a trial that finished all of this config's epochs (or diverged), else None."""
    try:
        state = TrialState(**{k: record[k] for k in vars(TrialState())})
    except (TypeError, KeyError):  # no record, or not one this bnbench wrote
        return None
    done = state.status == "diverged" or (state.status == "complete"
                                          and state.epochs >= trial.config.training.epochs)
    return state if done and isinstance(state.epochs, int) and isinstance(state.steps, int) else None


def _mismatched(trials: list[Trial], states: dict[int, TrialState],
                kept: dict[str, dict[int, list[int]]]) -> list[Trial]:
    """The trials whose rows (each row's epoch, per file, as `store.kept_rows` kept them) are not exactly the
    epochs and steps of their state."""
    wrong = []
    for trial in trials:
        state = states[trial.index]
        epochs = list(range(1, state.epochs + 1))
        rows = {name: found[trial.index] for name, found in kept.items()}
        batches = rows.get("batches.csv", [])
        evals = _eval_epochs(batches, trial.config.training.eval_every)
        if (len(batches) != state.steps or sorted(set(batches)) != epochs or rows.get("epochs.csv", []) != epochs
                or rows.get("evals.csv", evals) != evals):
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
        reporter.note(f"{run.dir}: the rows of {trial.key} do not match its checkpoint (a CSV was truncated or "
                      f"edited); it is trained again from its start")
        store.drop_checkpoint(run.dir, trial)
        run.states[trial.index] = TrialState()
    if broken:
        store.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})
        run.meta["retrained"] = store.typed_field(run.meta, "retrained", list, []) + [t.key for t in broken]


def _refuse_if_changed(run_dir: Path, meta: dict, stored: Config) -> None:
    """Resuming with other settings than the run began with would mix two experiments: refuse when the run's
    config.yaml was edited or its source file changed (see `drift`)."""
    found = drift(run_dir, meta, stored, strict=True)
    if found.edited:
        raise BnbenchError(f"{run_dir / 'config.yaml'}: edited since the run began ({'; '.join(found.edited)}; "
                           f"as started -> as now); restore it or start a new run")
    if found.error is not None:
        raise found.error
    if found.changed:
        raise BnbenchError(f"{found.source}: changed since the run began ({'; '.join(found.changed)}; in the run -> "
                           f"in the file now); restore it or start a new run")


def _resolved(raw: dict, source: Path) -> dict:
    """A run's stored config as this bnbench resolves it, every default written out (a run started by an older
    bnbench lacks the fields added since)."""
    return validate(raw, str(source)).model_dump(mode="json")


# ---- meta.json ---------------------------------------------------------------------------------------------------

def _meta(run: Run) -> dict:
    trials = [{"key": t.key, **t.labels, **vars(run.states[t.index])} for t in run.trials]
    done = sum(s.finished for s in run.states.values())
    return run.meta | {"trials_done": done, "trials_total": len(run.trials), "trials": trials}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _environment(device: torch.device) -> dict:
    def version(package):
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
    return {"bnbench": version("bnbench"), "torch": torch.__version__, "torchvision": version("torchvision"),
            "python": sys.version.split()[0], "platform": platform.platform(), "host": socket.gethostname(),
            "device": str(device), "device_name": name, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "git_commit": _git_commit()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> Optional[str]:
    """The commit of the bnbench checkout that ran this (with '+dirty' for uncommitted changes), if any."""
    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
