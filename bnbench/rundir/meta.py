"""meta.json: what a run records besides its rows -- the machine, how it was started, its state, each trial's
record, its digests and the history of its resumes, grows and prunes. Every field is declared once, in `Fields`.

A run folder outlives the bnbench that wrote it and may be edited by hand, so a field is read leniently: one that
does not hold its declared type reads as its default (so that it cannot stop `show` or `list` from reading the run,
or every run beside it). The fields typed `Recorded` are handed on as the run wrote them: their readers check them
with a line of their own (the sequential plan, the config the run began with, the digests) or show them as they
are. The file is rewritten with the keys in the order they were first written (a field added later goes last), so
that a run's meta.json is the same bytes whoever rewrites it.
"""

import json
import math
import time
from functools import cache
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from bnbench.rundir import store
from bnbench.rundir.store import read_mapping

FILE = "meta.json"

Recorded = Any  # as the run wrote it: its reader checks it (with one line) or shows it as it is


class Overrides(BaseModel):
    """The options a run was started with on top of its config file (`run --set --seeds --device --sweep`)."""

    model_config = ConfigDict(strict=True, frozen=True)

    set: list[str] = []  # PATH=VALUE, as typed (a grow by epochs adds or replaces training.epochs=N)
    seeds: Optional[list[int]] = None
    device: Optional[str] = None
    sweep: list[str] = []  # PATH=V1,V2, as typed


class Fields(BaseModel):
    """meta.json's fields, in the order a new run writes them."""

    model_config = ConfigDict(strict=True, frozen=True)

    # the machine (bnbench.rundir.environment)
    bnbench: Optional[str] = None
    torch: Optional[str] = None
    torchvision: Optional[str] = None
    python: Optional[str] = None
    platform: Optional[str] = None
    host: Optional[str] = None
    device: Recorded = None  # 'cpu', 'cuda:0', ...
    device_name: Recorded = None
    cpu_count: Optional[int] = None
    torch_threads: Optional[int] = None
    git_commit: Optional[str] = None
    # how the run was started
    source: Optional[str] = None  # the config file, resolved
    overrides: Recorded = None  # an `Overrides`: read with `Meta.overrides`
    command: Recorded = None  # argv
    config: Recorded = None  # the resolved config the run began with (bnbench.rundir.drift)
    started: Recorded = None  # a time as `now` writes it
    ended: Recorded = None
    status: Recorded = None  # running, partial, failed, complete (see `folder.RunFolder.status`)
    engine_note: Optional[str] = None  # why the engine asked for gave way to eager
    data: Recorded = None  # the subsets drawn (limit, validation, test_limit: bnbench.experiment.subsets), if any
    tags: list[str] = []  # bnbench.rundir.tags
    note: Optional[str] = None
    sequential: Recorded = None  # a --until-decided run's plan and record (bnbench.analysis.decisions)
    engine: Recorded = None
    engine_fallback: dict[str, str] = {}  # by trial key: why its engine failed and eager trained it on
    digests: Recorded = None  # by trial key (bnbench.rundir.digests)
    trials_done: Recorded = None
    trials_total: Recorded = None
    trials: list = []  # each trial's record: its key, labels and state (a hand-damaged one is skipped by readers)
    # what happened to the run since
    resumed: list = []  # the time of each resume
    grown: list = []  # each grow: {"at", "seeds_added", "epochs": [before, after]}
    retrained: list = []  # the keys of trials trained again after damage
    pruned: list = []  # each prune: {"at", "keep", "trials", "bytes"}


@cache
def _adapter(name: str) -> TypeAdapter:
    return TypeAdapter(Fields.model_fields[name].annotation, config=ConfigDict(strict=True))


class Meta:
    """A run's meta.json: `fields` typed, read leniently; changed with `update`, which keeps the file's key order."""

    def __init__(self, document: dict):
        self.document = document  # as read or written, in the file's key order
        self._fields: Optional[Fields] = None

    @property
    def fields(self) -> Fields:
        """The declared fields, each checked once (on first use after a change), without reading the file."""
        if self._fields is None:
            valid = {}
            for name in Fields.model_fields.keys() & self.document.keys():
                try:
                    valid[name] = _adapter(name).validate_python(self.document[name])
                except ValidationError:  # a damaged field reads as its default
                    pass
            self._fields = Fields.model_construct(**valid)
        return self._fields

    def has(self, name: str) -> bool:
        """Whether the run recorded field `name` at all (whatever it holds)."""
        return name in Fields.model_fields and name in self.document

    def update(self, **changes: Any) -> None:
        """Set fields (a new one goes last in the file, as a dict's update puts it)."""
        unknown = changes.keys() - Fields.model_fields.keys()
        if unknown:
            raise TypeError(f"meta.json has no field {', '.join(sorted(unknown))}; declare it in Fields")
        self.document.update(changes)
        self._fields = None

    def with_(self, **changes: Any) -> "Meta":
        """A copy with `changes` (the file as written, when the run keeps some fields apart)."""
        meta = Meta(dict(self.document))
        meta.update(**changes)
        return meta

    def overrides(self) -> Optional[Overrides]:
        """The options the run was started with; none recorded reads as none given; None when the record is
        damaged (a hand edit), which readers show rather than fail on."""
        recorded = self.document.get("overrides") or {}
        if not isinstance(recorded, dict):
            return None
        found = {"set": recorded.get("set") or [], "seeds": recorded.get("seeds"), "device": recorded.get("device")}
        try:
            return Overrides.model_validate(found | {"sweep": recorded.get("sweep") or []})
        except ValidationError:
            return None

    def text(self) -> str:
        """The file's text. allow_nan=False: Python would write NaN or Infinity, which is not JSON; every number it
        holds is checked to be finite where it comes in, so one that is not is a bug (a traceback), never an
        unreadable meta.json."""
        return json.dumps(self.document, indent=2, default=str, allow_nan=False) + "\n"


def write(path: Path, meta: Meta) -> None:
    """meta.json replaced whole (bnbench.rundir.store.atomic_write)."""
    store.atomic_write(path, meta.text())


def read(path: Path) -> Meta:
    """The run's meta.json; an unreadable one (missing, not JSON, not an object) is one line."""
    return Meta(read_mapping(path, _strict_json, "JSON", "a JSON object"))


def _strict_json(text: str) -> Any:
    """JSON as `write` writes it: Python's reader takes NaN, Infinity and 1e999 (as infinity), which the run's
    next write of meta.json would refuse; a hand edit that wrote one is damage, named on read."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a finite number; write one in its place")

    def finite(number: str) -> float:
        value = float(number)
        return value if math.isfinite(value) else refuse(number)

    return json.loads(text, parse_constant=refuse, parse_float=finite)


def now() -> str:
    """The time as meta.json records it (started, ended, resumed, grown, pruned)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
