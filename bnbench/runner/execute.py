"""Running an experiment: trials -> data + model -> train -> store; where units train is a backend's business
(`bnbench.backends`: this process, worker processes).

Backends only train; they hand back progress, and each finished epoch's results with the model/optimizer state,
to this process, which alone writes the run folder (rows first, then the checkpoint, then meta.json).
A trial's outcome depends only on its config and seed, never on where or in what order it runs.

`plan` decides what `bnbench run` does (a new run, resume, grow, or nothing) and `execute` does it; `resume`
reads back, repairs and grows a run folder; `environment` is the machine meta.json records.
"""

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch

from bnbench.backends import stopping
from bnbench.backends.dispatch import Dispatch, Job, WorkerDied
from bnbench.backends.dispatch import choose as choose_backend
from bnbench.engines import choose
from bnbench.engines.choose import resolve_device
from bnbench.engines.events import EpochResult, Progress
from bnbench.errors import BnbenchError, Interrupted, OutputRefused
from bnbench.experiment.config import Config
from bnbench.experiment.data import Dataset, load_dataset
from bnbench.experiment.loading import data_name, factories_beside, load_config, named_for_data, parse_override
from bnbench.experiment.trials import Trial, expand, refuse_large_probe_batch
from bnbench.nets.models import build_model
from bnbench.rundir import checkpoint_files, checkpoints, digests, rows
from bnbench.rundir.environment import environment
from bnbench.rundir.folder import RunFolder
from bnbench.rundir.lock import RunLock, stage_run_dir, stage_run_dir_at
from bnbench.rundir.log import RunLog
from bnbench.rundir.meta import Meta, now
from bnbench.rundir.schema import ROW_FILES
from bnbench.rundir.tags import labels, refuse_on_resume
from bnbench.rundir.trial_state import TrialState
from bnbench.runner.resume import (
    finish_grow,
    grown_config,
    grows,
    is_complete,
    latest_partial_run,
    refuse_if_changed,
    reopen,
)
from bnbench.runner.state import Reporter, Run, Silent

# ---- public entry points -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What `bnbench run` does, decided before anything is written: `kind` new (a run of `config`, read from
    `source`, under `out`), resume or grow (`run_dir`, growing by `seeds` and `epochs`), or nothing (`run_dir` is
    complete); `reason` says it in words."""

    kind: Literal["new", "resume", "grow", "nothing"]
    reason: str
    run_dir: Optional[Path] = None  # a new run's: the folder to make (None: a fresh run id under out/<name>/)
    config: Optional[Config] = None
    source: Optional[Path] = None
    out: Optional[Path] = None
    overrides: dict = field(default_factory=dict)
    seeds: Optional[list[int]] = None
    epochs: Optional[int] = None
    meta: dict = field(default_factory=dict)  # a new run's further meta.json fields (tags, note, a sequential plan)
    avoid: tuple[int, ...] = ()  # seeds a new sequential run may not add (a tune's tuning seeds)


def plan(
    config: "str | dict",
    run_folder: Optional[Path] = None,
    *,
    resume: bool = False,
    set_: tuple[str, ...] = (),
    seeds: Optional[list[int]] = None,
    device: Optional[str] = None,
    out: Path = Path("results"),
    sweeps: tuple[str, ...] = (),
    tags: tuple[str, ...] = (),
    note: Optional[str] = None,
) -> Plan:
    """What `bnbench run CONFIG [RUN_DIR]` does: a new run of CONFIG (a file or a shipped name); with --resume, the
    run folder CONFIG (or RUN_DIR, a run of CONFIG) continued or grown, or CONFIG's newest partial run continued.
    CONFIG may be a dict of config fields (bnbench.run's). An option that cannot apply is refused here, with one
    line."""
    if run_folder is not None:
        config = _run_folder_of(config, run_folder, resume)
    folder = None if isinstance(config, dict) else Path(config)
    if folder is None or not RunFolder(folder).meta_file.exists():
        cfg, source = load_config(config, tuple(set_), seeds, device, tuple(sweeps))
        if resume:
            run_dir = latest_partial_run(out, cfg)
            refuse_on_resume(tags, note, str(run_dir))
            return Plan("resume", f"{run_dir} is the newest partial run of '{cfg.name}' with this config", run_dir)
        return Plan(
            "new",
            f"a new run of '{cfg.name}' under {out / cfg.name}",
            config=cfg,
            source=source,
            out=out,
            overrides={"set": list(set_), "seeds": seeds, "device": device, "sweep": list(sweeps)},
            meta=labels(tags, note),
        )
    if not resume:
        raise BnbenchError(f"{config}: is a run folder; to continue it: bnbench run --resume {config}")
    refuse_on_resume(tags, note, config)
    epochs = _growth(folder, set_, device, sweeps)
    if grows(folder, seeds, epochs):
        what = ([f"seeds {', '.join(map(str, seeds))}"] if seeds else []) + ([f"{epochs} epochs"] if epochs else [])
        return Plan("grow", f"{config} grows to {' and '.join(what)}", folder, seeds=seeds, epochs=epochs)
    if is_complete(folder):
        return Plan("nothing", f"{config} is complete", folder)
    return Plan("resume", f"{config} is not complete", folder, seeds=seeds, epochs=epochs)


def execute(
    plan: Plan,
    dispatch: Dispatch = Dispatch(),
    argv: Optional[list[str]] = None,
    reporter: Reporter = Silent(),
) -> Path:
    """Carry out `plan` (new, resume or grow); returns the run folder."""
    if plan.kind == "new":
        return run_experiment(
            plan.config,
            plan.source,
            plan.out,
            overrides=plan.overrides,
            extra=plan.meta,
            dispatch=dispatch,
            argv=argv,
            reporter=reporter,
            at=plan.run_dir,
        )
    if plan.kind in ("resume", "grow"):
        return resume_experiment(
            plan.run_dir, dispatch=dispatch, argv=argv, reporter=reporter, seeds=plan.seeds, epochs=plan.epochs
        )
    raise ValueError(f"execute: a plan of kind {plan.kind!r} has nothing to run")


def _run_folder_of(config: str, run_folder: Path, resume: bool) -> str:
    """`run CONFIG --resume RUN_DIR`: RUN_DIR, once it is a run folder of CONFIG's experiment (on the config's
    data set, or on another one, named after it: `experiment.named_for_data`)."""
    if not resume:
        raise BnbenchError(f"{run_folder}: a second argument is a run folder to continue; add --resume")
    if not RunFolder(run_folder).meta_file.exists():
        raise BnbenchError(f"{run_folder}: not a run folder (no meta.json); pass RESULTS/<name>/<run id>")
    cfg, ran = load_config(config)[0], RunFolder(run_folder).raw_config()
    name, found = named_for_data(cfg.name, data_name(cfg.model_dump(mode="json")), data_name(ran)), ran.get("name")
    if found != name:
        raise BnbenchError(
            f"{run_folder}: a run of '{found}', not of {config} ('{name}'); pass a run folder of that "
            f"config, or the run folder alone"
        )
    return str(run_folder)


def _growth(run_dir: Path, set_: tuple[str, ...], device: Optional[str], sweeps: tuple[str, ...]) -> Optional[int]:
    """On `--resume RUN`: the epochs that `--set training.epochs=N` asks for; any other option that would change
    the trials already trained is refused (seeds are added by --seeds)."""
    if sweeps:
        raise BnbenchError(
            f"--sweep {sweeps[0]}: would change the trials {run_dir} has trained; a run grows only by --set "
            f"training.epochs=N (more epochs) and --seeds (more seeds); start a new run with --sweep"
        )
    if device is not None:
        raise BnbenchError(
            f"--device {device}: {run_dir} continues on the device it started with; to train on "
            f"another, start a new run"
        )
    epochs = None
    for text in set_:
        path, value = parse_override(text)
        if path != ["training", "epochs"] or not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BnbenchError(
                f"--set {text}: would change the trials {run_dir} has trained; a run grows only by "
                f"--set training.epochs=N (more epochs) and --seeds (more seeds); start a new run"
            )
        epochs = value
    return epochs


def run_experiment(
    config: Config,
    source: Optional[Path],
    out: Path,
    *,
    overrides: dict,
    extra: Optional[dict] = None,
    dispatch: Dispatch = Dispatch(),
    argv: Optional[list[str]] = None,
    reporter: Reporter = Silent(),
    at: Optional[Path] = None,
) -> Path:
    """Train every trial of `config` into a new run folder under `out/<name>/` (or at `at`); returns the folder.
    `source`: the file it was read from (None: given as a dict); `extra`: further meta.json fields."""
    with _preparing(None):
        device = resolve_device(config.device)
        data = load_dataset(config.dataset, reporter.loading)
        trials = expand(config)
        _check_models(trials, data)
        engine, note = choose.choose(config, device), choose.note(config, choose.requested(config, device))
        meta = Meta(
            environment(device)
            | {
                "source": str(source.resolve()) if source is not None else None,
                "overrides": overrides,
                "command": argv or [],
                "config": config.model_dump(mode="json"),
                "started": now(),
                "ended": None,
                "status": "running",
                "engine_note": note,
            }
            | ({"data": data.drawn} if data.drawn else {})
            | (extra or {})
        )
        run_dir, lock = _create_run_dir(out, config, trials, meta, at)
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


def _create_run_dir(
    out: Path, config: Config, trials: list[Trial], meta: Meta, at: Optional[Path] = None
) -> tuple[Path, RunLock]:
    """The run folder, locked, with config.yaml, meta.json and the CSV headers: written in a hidden sibling and
    renamed into place, so that a folder under its run id is always complete (an early Ctrl-C leaves none)."""
    staging, run_dir, lock = stage_run_dir(out, config.name) if at is None else stage_run_dir_at(at)
    try:
        RunFolder(staging).write_config(config)
        RunFolder(staging).write_meta(meta.with_(trials_done=0, trials_total=len(trials)))
        for name in ROW_FILES:
            rows.write_header(staging, trials, name)
        os.rename(staging, run_dir)
        lock.moved(run_dir)
        return run_dir, lock
    except BaseException as e:
        lock.release()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, OSError):
            raise BnbenchError(
                f"--out {out}: cannot write the run folder ({e.strerror or e}); free space or choose another folder"
            ) from None
        raise


def _check_models(trials: list[Trial], data: Dataset) -> None:
    """Build each distinct model once, so that a model that cannot fit the data fails before a run folder exists."""
    refuse_large_probe_batch(trials, len(data.train.y))
    for trial in {(t.variant.name, str(t.config.model)): t for t in trials}.values():
        build_model(trial.config.model, trial.variant, data.input_shape, data.num_classes, trial.seed)


def resume_experiment(
    run_dir: Path,
    *,
    dispatch: Dispatch = Dispatch(),
    argv: Optional[list[str]] = None,
    reporter: Reporter = Silent(),
    seeds: Optional[list[int]] = None,
    epochs: Optional[int] = None,
) -> Path:
    """Continue a stopped run: finished trials are kept, others restart from their last finished epoch; a trial
    whose rows or checkpoint are damaged or missing is trained again from its start.

    `seeds` and `epochs` grow the run: the trials of seeds it lacks, and the epochs past every trial's last one,
    are trained into the same folder, which then holds what one run started with them would (a trial's numbers
    depend only on its config and seed, and its checkpoint continues exactly: tested)."""
    folder = RunFolder(run_dir)
    meta, config = folder.meta(), folder.config()
    source = meta.fields.source
    if config.model.kind == "factory" and source:  # its module may sit beside the config it was started from
        factories_beside(Path(source))
    lock = folder.lock().acquire()
    log = None
    try:
        config = finish_grow(run_dir, meta, config)
        refuse_if_changed(run_dir, meta, config)
        checkpoints.refuse_epoch_growth(run_dir, config, meta, epochs)
        grown = grown_config(run_dir, config, seeds or [], epochs)
        log = RunLog(run_dir, reporter)
        with _preparing(run_dir):
            run = reopen(run_dir, meta, config, grown, log)
            data = load_dataset(run.config.dataset, reporter.loading)
            _refuse_other_subsets(run_dir, meta, data)
        device = resolve_device(run.config.device)
        _execute(run, data, device, choose.choose(run.config, device), dispatch, log)
    finally:
        if log:
            log.close()
        lock.release()
    return run_dir


def _refuse_other_subsets(run_dir: Path, meta: Meta, data: Dataset) -> None:
    """A run resumes or grows on the examples it began with: the subsets drawn now (dataset.limit, validation,
    test_limit) must be those meta.json's `data` records, or the data set under them changed."""
    if data.drawn != (meta.fields.data or {}):
        raise BnbenchError(
            f"{run_dir}: the data set's subsets (dataset.limit, validation, test_limit) differ from those the run "
            f"began with (meta.json's data): the data set changed since; restore it, or start a new run"
        )


@contextmanager
def _preparing(run_dir: Optional[Path]):
    """Before training, while a run folder is made (`run_dir` None) or made ready to resume: Ctrl-C, SIGTERM, a
    full disk or a lost mount end the command with one line that says what to do (a new run has written nothing;
    a resumed one is recorded as not complete before it changes anything)."""
    then = (
        f"before training; nothing finished is lost. Resume with: bnbench run --resume {run_dir}"
        if run_dir
        else "before training began; no run folder was made"
    )
    try:
        with stopping.sigterm_as_interrupt():
            yield
    except stopping.Terminated:
        raise Interrupted(f"terminated (SIGTERM) {then}", 143) from None
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted {then}") from None
    except OSError as e:
        if run_dir is None:
            raise
        raise BnbenchError(
            f"{run_dir}: cannot write ({e.strerror or e}); free space or fix the folder, then "
            f"resume with: bnbench run --resume {run_dir}"
        ) from None


# ---- execution ---------------------------------------------------------------------------------------------------


def _execute(
    run: Run, data: Dataset, device: torch.device, engine: str, dispatch: Dispatch, reporter: Reporter
) -> None:
    pending = [t for t in run.trials if not run.states[t.index].finished]
    units = choose.units(pending, engine, lambda t: run.states[t.index].epochs)
    run.meta.update(engine=engine)
    backend = choose_backend(dispatch, len(units), reporter.note)
    resume = f"bnbench run --resume {run.dir}"
    with stopping.sigterm_as_interrupt():  # later signals are ignored while the stop is recorded
        try:
            run.folder.write_meta(_meta(run))
            finished = [t for t in run.trials if run.states[t.index].finished]  # a stop may have left them unpruned
            checkpoints.prune_finished(run.dir, finished, checkpoints.kept(run.config, run.meta))
            reporter.started(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()}, len(data.train.y))
            backend.train(Job(run.dir, run.config, data, device, engine), units, _Recorder(run, reporter))
            left = [t.key for t in run.trials if not run.states[t.index].finished]
            if left:
                raise RuntimeError(f"bnbench: trials left untrained at the end of the run: {', '.join(left)}")
            lines = rows.rewrite_rows(run.dir, run.trials, {i: s.epochs for i, s in run.states.items()})[1]
            digests.record(run.dir, run.meta, run.trials, lines)
        except stopping.Terminated:
            _stopped(run, "partial")
            raise Interrupted(f"terminated (SIGTERM); nothing finished is lost. Resume with: {resume}", 143) from None
        except KeyboardInterrupt:
            _stopped(run, "partial")
            raise Interrupted(f"interrupted; nothing finished is lost. Resume with: {resume}") from None
        except OSError as e:  # writing the run folder failed (a full disk, a lost mount), or the output did
            _stopped(run, "partial")
            output = isinstance(e, OutputRefused)
            where, fix = ("standard output", "where it goes") if output else (run.dir, "or fix the folder")
            raise BnbenchError(
                f"{where}: cannot write ({e.strerror or e}); every finished epoch is saved: free space {fix}, then "
                f"resume with: {resume}"
            ) from None
        except WorkerDied as e:
            _stopped(run, "partial")
            raise BnbenchError(f"{e}; nothing finished is lost. Resume with: {resume}") from None
        except BnbenchError:  # the user can fix it (a factory that builds another model on resume): resumable
            _stopped(run, "partial")
            raise
        except BaseException:
            _stopped(run, "failed")
            raise
    run.meta.update(status="complete", ended=now())
    run.folder.write_meta(_meta(run))


def _stopped(run: Run, status: str) -> None:
    """Record how the run ended, if the folder can still be written (it may be why it stopped)."""
    run.meta.update(status=status, ended=now())
    try:
        run.folder.write_meta(_meta(run))
    except OSError:
        pass


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
        rows.append_epoch(run.dir, trial, result, first_step=trial_state.steps)
        trial_state.record(result, trial.config.training.epochs)
        checkpoint_files.save(run.dir, trial, state, {"key": trial.key, **vars(trial_state)})
        if result.fallback:
            self._fallback(trial, result.fallback)
        run.folder.write_meta(_meta(run))
        if trial_state.finished:  # recorded as such first: a stop before this loses nothing
            checkpoints.prune_trial(run.dir, trial, checkpoints.kept(run.config, run.meta))
        self.reporter.epoch_done(trial, result)

    def _fallback(self, trial: Trial, why: str) -> None:
        """meta.json's `engine_fallback` names each trial whose engine failed (then eager trained it on); the first
        is a note, as the others most likely failed alike."""
        self.run.meta.update(engine_fallback=self.run.meta.fields.engine_fallback | {trial.key: why})
        if not self.fell_back:
            self.reporter.note(
                f"{trial.key}: {why}; eager trains it on from its last finished epoch (meta.json's "
                f"engine_fallback lists every trial this happens to)"
            )
        self.fell_back = True


# ---- meta.json ---------------------------------------------------------------------------------------------------


def _meta(run: Run) -> Meta:
    """meta.json as written: the run's fields, and each trial's record (kept apart: they change every epoch)."""
    trials = [{"key": t.key, **t.labels, **vars(run.states[t.index])} for t in run.trials]
    done = sum(s.finished for s in run.states.values())
    return run.meta.with_(trials_done=done, trials_total=len(run.trials), trials=trials)
