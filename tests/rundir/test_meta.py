"""meta.json as a declared model: every field read leniently (a damaged field reads as its default), an unreadable
file in one line, and the file written back with the bytes and key order it was read with."""

import json

import pytest

from bnbench.errors import BnbenchError
from bnbench.rundir import meta as run_meta
from bnbench.rundir.meta import Fields, Meta, Overrides

# As a run writes it (keys in the order a new run writes them, a grow's fields last), shortened.
WRITTEN = {
    "bnbench": "0.1.0",
    "torch": "2.14.1",
    "device": "cpu",
    "cpu_count": 2,
    "source": "/configs/quick.yaml",
    "overrides": {"set": ["training.epochs=1"], "seeds": [0, 1], "device": None, "sweep": []},
    "command": ["bnbench", "run", "quick"],
    "config": {"name": "quick-digits", "seeds": [0, 1]},
    "started": "2026-01-01T12:00:00+0000",
    "ended": None,
    "status": "complete",
    "engine_note": None,
    "tags": ["a", "b"],
    "note": "hello",
    "engine": "eager",
    "digests": {"plain-s0": {"batches.csv": "0" * 32, "checkpoint": None}},
    "trials_done": 2,
    "trials_total": 2,
    "trials": [{"key": "plain-s0", "epochs": 1}],
    "resumed": ["2026-01-01T12:01:00+0000"],
    "grown": [{"at": "2026-01-01T12:01:00+0000", "seeds_added": [1], "epochs": [1, 1]}],
}


def written(tmp_path, document: dict):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def test_every_field_reads_typed(tmp_path):
    fields = run_meta.read(written(tmp_path, WRITTEN)).fields
    assert fields.tags == ["a", "b"] and fields.note == "hello" and fields.source == "/configs/quick.yaml"
    assert fields.cpu_count == 2 and fields.resumed == ["2026-01-01T12:01:00+0000"]
    assert fields.status == "complete" and fields.trials_done == 2 and fields.engine_fallback == {}


def test_a_run_writes_only_declared_fields():
    assert set(WRITTEN) <= set(Fields.model_fields)
    with pytest.raises(TypeError, match="no field colour"):
        Meta({}).update(colour="red")


def test_the_file_is_written_back_byte_for_byte(tmp_path):
    path = written(tmp_path, WRITTEN)
    before = path.read_bytes()
    run_meta.write(path, run_meta.read(path))
    assert path.read_bytes() == before


def test_an_update_keeps_the_key_order_and_puts_a_new_field_last(tmp_path):
    meta = run_meta.read(written(tmp_path, WRITTEN))
    meta.update(status="running", retrained=["plain-s0"])
    keys = list(json.loads(meta.text()))
    assert keys == [*WRITTEN, "retrained"]
    assert meta.fields.status == "running" and meta.fields.retrained == ["plain-s0"]


def test_with_leaves_the_original_as_it_was():
    meta = Meta(dict(WRITTEN))
    written_now = meta.with_(trials_done=0)
    assert written_now.fields.trials_done == 0 and meta.fields.trials_done == 2


@pytest.mark.parametrize(
    "field, damaged, default",
    [
        ("tags", "a,b", []),
        ("tags", ["a", 3], []),
        ("note", 5, None),
        ("source", ["x"], None),
        ("resumed", "yesterday", []),
        ("grown", {"at": 1}, []),
        ("pruned", 3, []),
        ("engine_fallback", ["x"], {}),
        ("cpu_count", "2", None),
    ],
)
def test_a_damaged_field_reads_as_its_default_and_is_kept_on_write(tmp_path, field, damaged, default):
    path = written(tmp_path, WRITTEN | {field: damaged})
    meta = run_meta.read(path)
    assert getattr(meta.fields, field) == default
    before = path.read_bytes()
    run_meta.write(path, meta)
    assert path.read_bytes() == before  # a hand edit is the user's to repair, not ours to drop


@pytest.mark.parametrize(
    "recorded, read",
    [
        (None, Overrides()),
        ({}, Overrides()),
        ({"set": None, "seeds": None, "device": None, "sweep": None}, Overrides()),
        (
            {"set": ["a=1"], "seeds": [3], "device": "cpu", "sweep": ["b=1,2"]},
            Overrides(set=["a=1"], seeds=[3], device="cpu", sweep=["b=1,2"]),
        ),
        ("--set a=1", None),
        ({"seeds": [True]}, None),
        ({"set": "a=1"}, None),
        ({"device": 0}, None),
    ],
)
def test_overrides_read_back_or_none_when_damaged(recorded, read):
    assert Meta({"overrides": recorded}).overrides() == read


@pytest.mark.parametrize(
    "text, line",
    [
        ("{", "not readable JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ("[1, 2]", "expected a JSON object"),
        ('{"a": NaN}', "not readable JSON (NaN is not a finite number; write one in its place)"),
        ('{"a": 1e999}', "not readable JSON (1e999 is not a finite number; write one in its place)"),
    ],
)
def test_an_unreadable_file_is_one_line(tmp_path, text, line):
    path = tmp_path / "meta.json"
    path.write_text(text)
    with pytest.raises(BnbenchError) as e:
        run_meta.read(path)
    assert str(e.value) == f"{path}: {line}"


def test_a_missing_file_says_what_the_folder_is_not(tmp_path):
    with pytest.raises(BnbenchError) as e:
        run_meta.read(tmp_path / "meta.json")
    assert str(e.value) == f"{tmp_path / 'meta.json'}: missing; is '{tmp_path}' a bnbench run folder?"


def test_a_folder_in_its_place_is_one_line(tmp_path):
    (tmp_path / "meta.json").mkdir()
    with pytest.raises(BnbenchError, match="not a regular file"):
        run_meta.read(tmp_path / "meta.json")


def test_nan_is_never_written(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        run_meta.write(tmp_path / "meta.json", Meta({"trials_done": float("nan")}))
    assert list(tmp_path.iterdir()) == []
