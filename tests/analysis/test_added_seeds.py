"""Seeds added after a run was made (issue 31, item 4). `run --resume RUN --seeds 10,11` after a look at RUN, then
`compare`, is the optional stopping the README measures: the fixed-n tests overstate the evidence. A grown run
(meta.json's `grown`) and runs pooled by `compare` now say so in their verdicts and in the `notes` column (csv,
json); a run made whole does not, nor a run made with --until-decided, whose rounds are grows its sequential
decisions allow for. (Pooled runs: tests/analysis/test_pool.py.)"""

import io
import json

import pandas as pd
import pytest
import yaml
from support.cli_calls import ok
from support.configs import tiny_config
from support.run_files import meta, only_run
from test_summary import table, write_run

from bnbench.analysis import compare_runs

CONFIG = tiny_config("grown", training={"epochs": 1, "batch_size": 32, "log_every": 10})
TAIL = ": if seeds were added after a look, these fixed-n p-values overstate the evidence (optional stopping)"


def csv(run_dir) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(ok("compare", run_dir, "--format", "csv")), keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run of seeds 0, 1 grown by seed 2 (`run --resume RUN --seeds 2`), and one run of seeds 0-2 made whole:
    their trials are the same."""
    out = tmp_path_factory.mktemp("grown")
    config = out / "grown.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    ok("run", config, "--out", out / "grown", "-q")
    grown = only_run(out / "grown", "grown")
    ok("run", "--resume", grown, "--seeds", "2", "-q")
    ok("run", config, "--seeds", "0-2", "--out", out / "whole", "-q")
    return grown, only_run(out / "whole", "grown")


def test_a_grown_run_says_its_fixed_n_p_values_overstate_the_evidence(runs):
    grown, whole = runs
    assert [change["seeds_added"] for change in meta(grown)["grown"]] == [[2]]
    caveat = f"grown from 2 to 3 seeds{TAIL}"
    g, w = csv(grown), csv(whole)
    compared = g.verdict.notna()
    assert (g.verdict[compared] == w.verdict[compared] + f"; {caveat}").all()  # the same numbers, and the caveat
    assert (g.notes == caveat).all() and w.notes.isna().all()
    (row,) = [r for r in json.loads(ok("compare", grown, "--format", "json")) if r["verdict"]]
    assert row["notes"] == caveat and row["verdict"].endswith(caveat)
    assert "grown from 2 to 3 seeds: if seeds were added after a look" in " ".join(ok("compare", grown).split())
    assert "optional stopping" not in ok("compare", whole) + ok("compare", whole, "--format", "json")


def synthetic(tmp_path, meta_fields: dict, seeds: int = 6):
    """bn 2-7 pts above plain on each of `seeds` seeds, with meta.json's `meta_fields`."""
    trials = {}
    for seed in range(seeds):
        trials[("plain", seed)] = {"losses": [[1.0, 0.8, 0.6, 0.4]], "acc": [0.80]}
        trials[("bn", seed)] = {"losses": [[1.0, 0.7, 0.5, 0.3]], "acc": [0.82 + 0.01 * seed]}
    return write_run(tmp_path, trials, meta={"status": "complete", **meta_fields})


def grow(*added, epochs=(1, 1)) -> dict:
    return {"at": "2026-12-06T22:00:00", "seeds_added": list(added), "epochs": list(epochs)}


@pytest.mark.parametrize(
    "grown, said",
    [
        ([grow(3, 4), grow(5)], "grown from 3 to 5 to 6 seeds"),  # two grows: each look named
        ([grow(epochs=(1, 2)), grow(4, 5)], "grown from 4 to 6 seeds"),  # a grow by epochs adds no seed
        ([grow(epochs=(1, 2))], None),
        (["damaged", {"seeds_added": "5"}], None),  # a hand-damaged record counts as no grow
    ],
)
def test_the_caveat_names_each_grow_that_added_seeds(tmp_path, grown, said):
    verdict = table(synthetic(tmp_path, {"grown": grown})).loc["bn", "verdict"]
    assert verdict.endswith(f"; {said}{TAIL}") if said else "optional stopping" not in verdict


def test_a_run_made_until_decided_is_analysed_as_the_sequential_design_it_was(tmp_path):
    """Its rounds are grows (looks after 3 and 6 seeds, the first decided nothing): its decisions allow for the
    looks, and the table's own caveat says they are the ones that hold; the verdict adds none."""
    plan = {
        "metric": "test_acc",
        "alpha": 0.05,
        "effect": None,
        "spending": "pocock",
        "max_seeds": 9,
        "round": 2,
        "seeds": list(range(9)),
        "looks": [3, 6, 9],
        "comparisons": 1,
        "typed_seeds": None,
    }
    run = synthetic(tmp_path, {"sequential": {"plan": plan}, "grown": [grow(3, 4, 5)]})
    (comparison,), _ = compare_runs([run])
    assert comparison.sequential is not None and comparison.decided
    verdicts = [v for v in comparison.table.verdict if isinstance(v, str)]
    assert verdicts and not any("optional stopping" in v for v in verdicts)
    assert not any("optional stopping" in n for n in comparison.table.notes)
