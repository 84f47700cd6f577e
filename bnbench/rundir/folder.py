"""The run folder, `<out>/<name>/<run id>/`, as one object: the one place that knows its files' names.

    config.yaml   the resolved config (as the run trains it now: a grow rewrites it)
    meta.json     the machine, how the run was started, its state and history (bnbench.rundir.meta)
    batches.csv, epochs.csv, evals.csv, probes.csv   the rows (their columns: bnbench.rundir.schema)
    checkpoints/  each trial's trainer state (bnbench.rundir.checkpoint_files, bnbench.rundir.checkpoints)
    run.log       every line the run said (bnbench.rundir.log)
    lock          held while a process works on the run (bnbench.rundir.lock)

Only the main process of a run writes here (rows first, then the checkpoint, then meta.json).
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from bnbench.experiment.config import Config, dump
from bnbench.experiment.loading import validate
from bnbench.experiment.trials import Trial
from bnbench.rundir import checkpoint_files, meta, store
from bnbench.rundir.lock import RunLock
from bnbench.rundir.meta import Meta
from bnbench.rundir.store import TEMPORARY, read_mapping, read_regular

CONFIG = "config.yaml"
META = meta.FILE
LOG = "run.log"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __str__(self) -> str:
        return str(self.path)

    # ---- its files -----------------------------------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def meta_file(self) -> Path:
        return self.path / META

    @property
    def log_file(self) -> Path:
        return self.path / LOG

    def file(self, name: str) -> Path:
        """One of its files by name: META, CONFIG, LOG, a row file's (bnbench.rundir.schema: BATCHES.file, ...)."""
        return self.path / name

    def checkpoint_files(self, trial: Trial) -> tuple[Path, Path]:
        """A trial's resume checkpoint and its weights-only file."""
        return checkpoint_files.files(self.path, trial)

    def has_meta(self) -> bool:
        """Whether this is a run folder that a run made (it holds meta.json)."""
        return self.meta_file.is_file()

    # ---- reading and writing -------------------------------------------------------------------------------------

    def raw_config(self) -> dict:
        """config.yaml as a raw mapping (an unreadable one is one line)."""
        return read_mapping(self.config_file, yaml.safe_load, "YAML", "a mapping of config fields")

    def config(self) -> Config:
        """config.yaml, validated (an invalid one is one line naming the file)."""
        return validate(self.raw_config(), str(self.config_file))

    def write_config(self, config: Config) -> None:
        store.atomic_write(self.config_file, dump(config))

    def meta(self) -> Meta:
        """meta.json (read once per use: pass the `Meta` on rather than reading it again)."""
        return meta.read(self.meta_file)

    def write_meta(self, found: Meta) -> None:
        meta.write(self.meta_file, found)

    def read_bytes(self, name: str) -> bytes:
        """One of its files' bytes (one line for anything but a regular file in its place)."""
        return read_regular(self.file(name))

    def lock(self) -> RunLock:
        """The run's lock, not yet taken (`acquire`)."""
        return RunLock(self.path)

    def remove_temporaries(self) -> None:
        """Drop the temporary files of atomic writes that a killed process (a run, a prune) left behind: only names
        `store.atomic_write` gives the run's files, never another file of the user's. Call it holding the run's lock
        (a live writer's temporary is about to be renamed)."""
        for path in [*self.path.glob(".*.tmp*"), *self.path.glob(f"{checkpoint_files.FOLDER}/.*.tmp*")]:
            if TEMPORARY.fullmatch(path.name) and path.is_file():
                path.unlink(missing_ok=True)

    def status(self, found: Meta) -> str:
        """complete, running (a live process holds the lock), or partial (stopped or crashed; resumable)."""
        if found.fields.status == "complete":
            return "complete"
        return "running" if self.lock().held_elsewhere() else "partial"
