"""Hand-damaged run folders met by the commands that read them: each damage a hostile probe found to give a traceback
(a copied run with one field or file broken, then show, compare, list, export, prune and --resume) is now refused in
one line naming the file and field, or read around as the command's other damaged fields are. One module-scoped run
is copied per test: nothing trains after it."""

import json
import shutil

import pytest
import yaml
from support.cli_calls import invoke
from support.configs import tiny_config

CONFIG = tiny_config(
    "hostile", training={"epochs": 1, "batch_size": 32, "log_every": 0, "eval_every": 20, "probe_every": 30}
)


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """A complete run of CONFIG, with probes, to copy and damage."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.yaml").write_text(yaml.safe_dump(CONFIG))
    result = invoke("run", folder / "hostile.yaml", "--out", folder / "results", "-q")
    assert result.exit_code == 0, result.output
    (run_dir,) = (folder / "results" / "hostile").iterdir()
    return run_dir


@pytest.fixture
def damaged(complete, tmp_path):
    """A copy of the complete run, under its own results folder, with `damage` done to it."""

    def copy(damage):
        run_dir = shutil.copytree(complete, tmp_path / "results" / "hostile" / complete.name)
        damage(run_dir)
        return run_dir

    return copy


def meta_text(change):
    """Damage: meta.json's text changed by `change`."""

    def damage(run_dir):
        path = run_dir / "meta.json"
        path.write_text(change(path.read_text()))

    return damage


def meta_field(change):
    """Damage: meta.json's object changed in place by `change`."""

    def damage(run_dir):
        meta = json.loads((run_dir / "meta.json").read_text())
        change(meta)
        (run_dir / "meta.json").write_text(json.dumps(meta, indent=2))

    return damage


def commands(run_dir):
    return {
        "show": ["show", run_dir],
        "compare": ["compare", run_dir],
        "list": ["list", "--results", run_dir.parent.parent],
        "prune": ["prune", run_dir],
        "resume": ["run", "--resume", run_dir, "-q"],
    }


def assert_one_line_or_fine(result):
    """The user's damage: a clean run of the command, or one line and exit status 2; never a traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if result.exit_code != 0:
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


# (label, damage, the text the refusing line holds)
REFUSED = [
    (
        "meta-nan",
        meta_text(lambda t: t.replace('"trials_done": ', '"trials_done": NaN, "x": ')),
        "NaN is not a finite number",
    ),
    (
        "meta-infinity",
        meta_text(lambda t: t.replace('"trials_done": ', '"x": 1e999, "trials_done": ')),
        "1e999 is not a finite number",
    ),
]


@pytest.mark.parametrize("label, damage, named", REFUSED, ids=[case[0] for case in REFUSED])
@pytest.mark.parametrize("command", ["show", "compare", "prune", "resume"])
def test_damage_is_refused_in_one_line(damaged, label, damage, named, command):
    run_dir = damaged(damage)
    result = invoke(*commands(run_dir)[command])
    assert_one_line_or_fine(result)
    assert result.exit_code == 2 and named in result.output and "meta.json" in result.output


# (label, damage, command, what it says): a damaged field the command reads around, as a hand edit it cannot trust:
# list shows the run; prune keeps the checkpoint of a trial whose record is damaged; --resume finds the run complete
READ_AROUND = [
    (f"started-{label}", meta_field(lambda meta, value=value: meta.update(started=value)), "list", "hostile/")
    for label, value in [("null", None), ("number", -3), ("list", []), ("object", {"a": 1})]
] + [
    (
        f"trial-{field}-{label}-{command}",
        meta_field(lambda meta, f=field, v=value: meta["trials"][0].update({f: v})),
        command,
        said,
    )
    for field, label, value, command, said in [
        ("key", "list", ["a"], "prune", "from 3 trials"),
        ("key", "object", {"a": 1}, "resume", "is complete"),
        ("epochs", "text", "x", "prune", "from 3 trials"),
        ("epochs", "null", None, "prune", "from 3 trials"),
    ]
]


@pytest.mark.parametrize("label, damage, command, said", READ_AROUND, ids=[case[0] for case in READ_AROUND])
def test_damaged_field_is_read_around(damaged, label, damage, command, said):
    run_dir = damaged(damage)
    result = invoke(*commands(run_dir)[command])
    assert result.exit_code == 0, result.output
    assert said in result.output
