"""A tune folder (`bnbench tune`, runner.tune): tune.json and its three stage runs, each an ordinary run folder.
Torch-free, so that compare, show and the views read a tune without importing the runner."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.rundir.folder import RunFolder

TUNE_FILE = "tune.json"
STAGES = ("tuning", "tuned", "shared")  # in the order they train
COMPARED = ("tuned", "shared")  # the stages compared on test


def is_tune(path: Path) -> bool:
    return (path / TUNE_FILE).is_file()


def is_tuning_stage(run_dir: Path) -> bool:
    """Whether `run_dir` is a tune's tuning stage: it chose on validation, so its test numbers are no answer, and
    compare reads it only when named itself."""
    return run_dir.name == STAGES[0] and is_tune(run_dir.parent)


@dataclass(frozen=True)
class Tune:
    """A tune folder and its tune.json: `spec` what was asked (config, grid, seeds, metric, margin), `stage` the
    stage reached (a name of STAGES, or "complete"), `choices` each variant's chosen point once tuning is done."""

    dir: Path
    spec: dict
    stage: str
    choices: Optional[dict[str, dict[str, Any]]] = None

    @property
    def config(self) -> Config:
        return Config.model_validate(self.spec["config"])

    @property
    def grid(self) -> dict[str, list]:
        """{path: values}, each value as its config field reads it ('1e-3', a YAML string, as 0.001)."""
        config = self.config
        return {
            path: [config.with_values({path: v}).get(path) for v in values]
            for path, values in self.spec["grid"].items()
        }

    def stage_dir(self, stage: str) -> Path:
        return self.dir / stage

    def write(self, **changed) -> "Tune":
        """This tune with `changed` fields, written to tune.json (whole or not at all: a temporary file renamed)."""
        tune = Tune(**{**vars(self), **changed})
        text = json.dumps({**tune.spec, "stage": tune.stage, "choices": tune.choices}, indent=2) + "\n"
        part = tune.dir / f".{TUNE_FILE}.tmp{os.getpid()}"
        part.write_text(text, encoding="utf-8")
        os.replace(part, tune.dir / TUNE_FILE)
        return tune


def read(tune_dir: Path) -> Tune:
    """The tune folder `tune_dir`, as tune.json describes it."""
    try:
        raw = json.loads((tune_dir / TUNE_FILE).read_text(encoding="utf-8"))
        stage, choices = raw.pop("stage"), raw.pop("choices")
    except FileNotFoundError:
        raise BnbenchError(f"{tune_dir}: not a tune folder (no {TUNE_FILE}); pass OUT/<name>/<tune id>") from None
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise BnbenchError(f"{tune_dir / TUNE_FILE}: cannot be read ({e!r}); start the tune again") from None
    return Tune(tune_dir, raw, stage, choices)


def final_seeds(tune: Tune) -> list[int]:
    """The seeds the shared stage trains: those the tuned stage ended with (more, when it added seeds until
    decided); the tuned stage's own: the final seeds asked for."""
    tuned = RunFolder(tune.stage_dir("tuned"))
    return tuned.config().seeds if tuned.meta_file.exists() else tune.spec["final_seeds"]
