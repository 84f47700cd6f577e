"""analysis.tuning: the choice of each variant's setting and its sensitivity, on hand-built frames."""

import math

import numpy as np
import pandas as pd
import pytest

from bnbench.analysis import tuning

LRS = [1e-4, 1e-3, 1e-2]
GRID = {"optimizer.lr": LRS}


def finals(values: dict[str, list[list[float]]], diverged=()) -> pd.DataFrame:
    """A finals frame: values[variant][point] = per-seed val_acc; `diverged` (variant, point, seed) trials."""
    rows = []
    for variant, per_point in values.items():
        for point, seeds in enumerate(per_point):
            for seed, value in enumerate(seeds):
                gone = (variant, point, seed) in diverged
                rows.append((variant, seed, point, 0.0 if gone else value, gone))
    return pd.DataFrame(rows, columns=["variant", "seed", "point", "value", "diverged"])


def test_best_mean_per_variant_and_its_interval():
    frame = finals({"bn": [[0.90, 0.92, 0.94], [0.95, 0.96, 0.97], [0.80, 0.82, 0.84]], "plain": [[0.5] * 3] * 3})
    scored = tuning.scores(frame, "val_acc", margin=1.0)
    bn = scored[scored.variant == "bn"].set_index("point")
    assert bn["mean"].tolist() == pytest.approx([0.92, 0.96, 0.82])
    assert bn.best.tolist() == [False, True, False]
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, 2) x sd / sqrt(3)
    assert bn.loc[1, "ci_low"] == pytest.approx(0.96 - half)
    assert bn.loc[1, "ci_high"] == pytest.approx(0.96 + half)
    chosen = tuning.choices(scored, GRID).set_index("variant")
    assert chosen.loc["bn", "point"] == 1 and chosen.loc["bn", "edges"] == []


def test_ties_go_to_the_point_listed_first():
    frame = finals({"bn": [[0.9, 0.9], [0.95, 0.97], [0.96, 0.96]]})
    scored = tuning.scores(frame, "val_acc", margin=0.0)
    assert scored[scored.best].point.tolist() == [1]  # 0.96 and 0.96: the first listed
    assert scored.good.tolist() == [False, True, True]


def test_a_point_with_a_diverged_seed_ranks_below_any_without():
    frame = finals({"bn": [[0.5, 0.5, 0.5], [0.99, 0.99, 0.99]]}, diverged={("bn", 1, 2)})
    scored = tuning.scores(frame, "val_acc", margin=100.0)
    assert scored.diverged.tolist() == [0, 1]
    assert scored[scored.best].point.tolist() == [0]  # point 1's mean, 0.66 with the diverged seed at 0, is higher
    assert scored.good.tolist() == [True, False]  # a diverged point is never within the margin


def test_when_every_point_diverges_the_best_mean_wins():
    frame = finals({"bn": [[0.5, 0.5, 0.5], [0.9, 0.9, 0.9]]}, diverged={("bn", 0, 0), ("bn", 0, 1), ("bn", 1, 0)})
    scored = tuning.scores(frame, "val_acc", margin=1.0)
    assert scored[scored.best].point.tolist() == [1]  # 0.6 beats 0.1667


def test_loss_lower_is_better_and_diverged_is_infinite():
    rows = pd.DataFrame(
        {
            "variant": ["bn"] * 4,
            "seed": [0, 1, 0, 1],
            "point": [0, 0, 1, 1],
            "epoch": [2, 2, 2, 1],  # the last trial stopped at epoch 1: diverged
            "train_loss": [0.3, 0.3, 0.2, np.nan],
            "val_loss": [0.5, 0.6, 0.1, np.nan],
        }
    )
    got = tuning.final_values(rows, "val_loss", epochs=2)
    assert got.diverged.tolist() == [False, False, False, True]
    assert got.value.tolist() == [0.5, 0.6, 0.1, math.inf]
    scored = tuning.scores(got, "val_loss", margin=0.05)
    assert scored[scored.best].point.tolist() == [0]
    assert scored["mean"].tolist() == [pytest.approx(0.55), math.inf]
    assert np.isnan(scored.ci_low[1])  # no interval around an infinite mean


def test_margin_in_points_of_accuracy():
    frame = finals({"bn": [[0.950] * 2, [0.958] * 2, [0.960] * 2, [0.945] * 2]})
    scored = tuning.scores(frame, "val_acc", margin=1.0)  # within 1 point of 96.0: 95.0 to 96.0
    assert scored.good.tolist() == [True, True, True, False]


def test_edges_flag_a_choice_at_the_grids_smallest_or_largest():
    assert tuning.edges({"optimizer.lr": 1e-2}, GRID) == ["optimizer.lr at the grid's largest"]
    assert tuning.edges({"optimizer.lr": 1e-4}, GRID) == ["optimizer.lr at the grid's smallest"]
    assert tuning.edges({"optimizer.lr": 1e-3}, GRID) == []
    assert tuning.edges({"optimizer.name": "sgd"}, {"optimizer.name": ["adam", "sgd"]}) == []  # no order: no edge


def test_points_list_the_product_last_axis_fastest():
    grid = {"optimizer.lr": [1, 2], "optimizer.weight_decay": [0, 5]}
    assert tuning.points(grid)[1] == {"optimizer.lr": 1, "optimizer.weight_decay": 5}


def test_no_tuning_decision_reads_a_test_metric():
    rows = pd.DataFrame(
        {
            "variant": ["bn", "bn"],
            "seed": [0, 0],
            "point": [0, 1],
            "epoch": [1, 1],
            "train_loss": [0.3, 0.3],
            "val_acc": [0.9, 0.8],
            "test_acc": [0.1, 0.99],
        }
    )
    with pytest.raises(ValueError, match="drop test_acc"):
        tuning.final_values(rows, "val_acc", epochs=1)
    scrambled = [rows.drop(columns="test_acc"), rows.assign(test_acc=[0.99, 0.1]).drop(columns="test_acc")]
    picked = [tuning.scores(tuning.final_values(r, "val_acc", 1), "val_acc", 1.0).best.tolist() for r in scrambled]
    assert picked == [[True, False], [True, False]]


def test_choices_come_in_the_variants_order():
    frame = finals({"bn": [[0.5], [0.9]], "plain": [[0.9], [0.5]]})
    chosen = tuning.choices(tuning.scores(frame, "val_acc", 1.0), {"optimizer.lr": [1e-3, 1e-2]})
    assert chosen.variant.tolist() == ["bn", "plain"] and chosen.point.tolist() == [1, 0]
    assert chosen["mean"].tolist() == [0.9, 0.9]
