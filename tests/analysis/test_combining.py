"""bnbench.analysis.combining: which runs are pooled (the config and meta.json's fingerprint), and a baseline from
another run with another batch size (speeds in examples seen, each trial censored at its own last step).

Each test fails on the code before the rebuild (commit e9ece1d); what that code printed for the same folders
through `bnbench compare` is recorded in a comment per test."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from support.configs import tiny_config

from bnbench.analysis import compare_runs

META = {
    "status": "complete",
    "device": "cpu",
    "device_name": "AMD EPYC",
    "engine": "eager",
    "torch": "2.14.1",
    "torchvision": "0.29.1",
    "bnbench": "0.1.0",
    "git_commit": "2a40124",
}


def write_run(
    folder: Path, trials: dict, *, name: str, run_id: str, batch_size: int, log_every=5, baseline="plain", meta=None
) -> Path:
    """A run folder as the runner writes it (9 significant digits), one epoch per trial. trials: {(variant, seed):
    (losses, test acc)}; a variant named plain has norm none, the others batchnorm."""
    run_dir = folder / name / run_id
    run_dir.mkdir(parents=True)
    variants = list(dict.fromkeys(k[0] for k in trials))
    config = tiny_config(
        name,
        sorted({k[1] for k in trials}),
        optimizer=None,
        training={"epochs": 1, "batch_size": batch_size, "log_every": log_every},
        baseline=baseline,
        variants=[{"name": v, "norm": "none" if v == "plain" else "batchnorm"} for v in variants],
    )
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "meta.json").write_text(json.dumps(meta or {"status": "complete"}))
    batches = ["variant,seed,epoch,batch,step,loss"]
    rows = ["variant,seed,epoch,train_loss,train_acc,test_loss,test_acc,seconds"]
    for (variant, seed), (losses, acc) in sorted(trials.items(), key=lambda kv: (kv[0][1], variants.index(kv[0][0]))):
        batches += [f"{variant},{seed},1,{t},{t},{loss:.9g}" for t, loss in enumerate(losses, start=1)]
        rows.append(f"{variant},{seed},1,{np.mean(losses):.9g},0.5,0.5,{acc:.9g},1.0")
    (run_dir / "batches.csv").write_text("\n".join(batches) + "\n")
    (run_dir / "epochs.csv").write_text("\n".join(rows) + "\n")
    return run_dir


def line(seed: int, slope: float, steps: int) -> np.ndarray:
    """2 - slope * step with a little seeded noise (so that no smoothed value equals a target by accident)."""
    rng = np.random.default_rng(seed)
    return 2.0 - slope * np.arange(1, steps + 1) + 0.002 * rng.standard_normal(steps)


def read_losses(run: Path, variant: str, seed: int) -> np.ndarray:
    import pandas as pd

    b = pd.read_csv(run / "batches.csv")
    return b[(b.variant == variant) & (b.seed == seed)].loss.to_numpy()


def smoothed(losses: np.ndarray, window: int) -> dict:
    """{step: mean of the `window` losses ending there}, summed directly."""
    return {t: math.fsum(losses[t - window : t]) / window for t in range(window, len(losses) + 1)}


def crossing(curve: dict, level: float):
    """(defined step before, first step at or below `level`), or (last step, None) if never."""
    steps = sorted(curve)
    for i, step in enumerate(steps):
        if curve[step] <= level:
            return (steps[i - 1] if i else 0), step
    return steps[-1], None


# ---- 1. a baseline from a run with another batch size ------------------------------------------------------------

SEEDS = range(6)


def two_batch_sizes(folder: Path, batch_a: int, steps_a: int, batch_b: int, steps_b: int, slopes: dict):
    """Run A: plain (the baseline) at batch_a for steps_a steps (and a bn it does not compare); run B: `slopes`'
    variants at batch_b for steps_b steps, the same data (the same examples per epoch)."""
    a = write_run(
        folder,
        {(v, s): (line(100 + s, 0.43 / (steps_a / 2 - 2), steps_a), 0.8) for s in SEEDS for v in ("plain", "bn")},
        name="base",
        run_id="20250101-000000",
        batch_size=batch_a,
    )
    b = write_run(
        folder,
        {
            (v, s): (line(200 + 10 * s + i, slope, steps_b), 0.8)
            for s in SEEDS
            for i, (v, slope) in enumerate(slopes.items())
        },
        name="other",
        run_id="20250102-000000",
        batch_size=batch_b,
        baseline=next(iter(slopes)),
    )
    return a, b


def target(a: Path) -> float:
    """The point's target: the mean over the baseline's seeds of its smoothed loss at the last full window at or
    before ceil(half its steps)."""
    levels = []
    for s in SEEDS:
        base = read_losses(a, "plain", s)
        curve_b, ref = smoothed(base, 5), math.ceil(len(base) / 2)
        levels.append(curve_b[max(t for t in curve_b if t <= ref)])
    return math.fsum(levels) / len(levels)


def expected_speeds(a: Path, b: Path, variant: str, batch_a: int, batch_b: int):
    """Per seed, from the CSVs: the baseline's and the variant's crossings of the point's target (one level for
    every seed), the variant's steps, and the speedup in examples seen (None: not reached)."""
    level = target(a)
    out = []
    for s in SEEDS:
        base, own = read_losses(a, "plain", s), read_losses(b, variant, s)
        curve_b, curve_v = smoothed(base, 5), smoothed(own, 5)
        (after_b, at_b), (after_v, at_v) = crossing(curve_b, level), crossing(curve_v, level)
        assert at_b is not None  # every baseline trial meets it within its run (a line with little noise)
        assert after_b + 1 == at_b and (at_v is None or after_v + 1 == at_v)
        assert min(abs(x - level) for x in curve_v.values()) > 1e-6  # no crossing rests on rounding
        out.append((at_b, at_v, len(own), None if at_v is None else at_b * batch_a / (at_v * batch_b)))
    return out


def test_speeds_against_a_run_of_another_batch_size_are_counted_in_examples(tmp_path):
    """Run A: plain at batch 16, 90 steps; run B: batch 32, 45 steps. B's `fast` meets plain's target at about its
    step 20 (640 examples to plain's 720: 1.125x), `late` at about step 40 (1280 examples: 0.56x, though faster
    in steps), `never` not within its own 45 steps: censored there.
    Old code (steps, not examples): "fast vs plain@20250101-000000: ... speedup 2.18× to plain@20250101-000000's
    final train loss (6/6 seeds reached it)", "late ...: speedup 1.12× [1.12, 1.12] ... (6/6 seeds reached it);
    faster to the target loss (Holm p < 0.05)" (it is 0.56x in examples), "never ...: speedup ≤0.53× ... (0/6
    seeds reached it)"; no steps_unit column."""
    a, b = two_batch_sizes(tmp_path, 16, 90, 32, 45, {"fast": 0.43 / 18, "late": 0.43 / 38, "never": 0.005})
    (comparison,), skipped = compare_runs([b], baseline=f"plain@{a}")
    assert skipped == []
    t = comparison.table.set_index("variant")
    base = "plain@20250101-000000"
    assert t.loc[base, "baseline"] and (t.steps_unit[["fast", "late", "never"]] == "examples").all()
    speedups = {}
    for variant in ("fast", "late"):
        per_seed = expected_speeds(a, b, variant, 16, 32)
        ratios = [r for *_, r in per_seed]
        row = t.loc[variant]
        assert None not in ratios and row.steps_reached == 6 and row.steps_censored == 0
        assert row.steps_estimator == "geometric mean"
        speedups[variant] = math.exp(np.mean(np.log(ratios)))
        assert row.steps_speedup == pytest.approx(speedups[variant], rel=1e-12)
        assert row.steps_at == pytest.approx(np.mean([at_v for _, at_v, _, _ in per_seed]))
        assert "did not reach it" not in row.verdict and "counted in examples seen" in row.verdict
    assert t.loc["fast", "steps_speedup"] == pytest.approx(720 / 640, rel=0.1)
    assert t.loc["late", "steps_speedup"] == pytest.approx(720 / 1280, rel=0.1)
    for variant, word in (("fast", "sooner"), ("late", "later")):
        row = t.loc[variant]
        assert row.steps_p_holm < 0.05
        claim = f"reaches {base}'s half-run loss {speedups[variant]:.2f}×"
        after = row.verdict.split(claim)[1].split(";")[0]
        assert claim in row.verdict and after.startswith(f" {word}, unadjusted 95% CI [") and "] (Holm p" in after
        assert row.verdict.split(claim)[1].split(";")[0].endswith(", counted in examples seen (the batch sizes differ)")
    never = expected_speeds(a, b, "never", 16, 32)
    assert all(at_v is None for _, at_v, _, _ in never)
    row = t.loc["never"]
    assert row.steps_reached == 0 and row.steps_censored == 6 and row.steps_estimator == "median"
    # censored at its own last step (45, so the crossing is after step 45 of 32 examples), not at plain's 90
    bounds = [at_b * 16 / ((own + 1) * 32) for at_b, _, own, _ in never]
    high = math.exp(np.median(np.log(bounds)))
    assert row.steps_speedup == 0 and row.steps_speedup_high == pytest.approx(high, rel=1e-12) and high < 1
    assert (
        f"no difference shown in speed to {base}'s half-run loss: median ≤{high:.2f}×, unadjusted 95% CI ["
        in row.verdict
        and ", 6/6 seeds did not reach it within their run, counted in examples seen (the batch sizes differ)"
        in row.verdict
    )


def test_a_variant_reaching_the_target_after_the_baselines_last_step_is_reached(tmp_path):
    """The other way round: plain at batch 32 for 45 steps, the variant at batch 16 for 90, meeting plain's target
    (736 examples) at about its step 70 (1120 examples), after plain's last step 45: reached, 0.66x.
    Old code: "slow vs plain@20250101-000000: ... speedup 0.32× [0.32, 0.33] to plain@20250101-000000's final train
    loss (6/6 seeds reached it); ...; slower to the target loss (Holm p < 0.05)" — counted in steps (0.66x in
    examples); no steps_unit column."""
    a, b = two_batch_sizes(tmp_path, 32, 45, 16, 90, {"slow": 0.43 / 68})
    (comparison,), _ = compare_runs([b], baseline=f"plain@{a}")
    row = comparison.table.set_index("variant").loc["slow"]
    per_seed = expected_speeds(a, b, "slow", 32, 16)
    assert all(at_v is not None and at_v > 45 for _, at_v, _, _ in per_seed)
    assert row.steps_unit == "examples" and row.steps_reached == 6 and row.steps_censored == 0
    assert row.steps_estimator == "geometric mean"
    ratios = [r for *_, r in per_seed]
    assert row.steps_speedup == pytest.approx(math.exp(np.mean(np.log(ratios))), rel=1e-12)
    assert row.steps_speedup == pytest.approx(736 / 1120, rel=0.1)
    assert "did not reach it" not in row.verdict and "counted in examples seen" in row.verdict


# ---- 3. pooling keys on meta.json --------------------------------------------------------------------------------


@pytest.mark.parametrize("key, other", [("device", "cuda:0"), ("torch", "2.5.0"), ("engine", "graph")])
def test_runs_that_differ_in_device_or_software_are_not_pooled(tmp_path, key, other):
    """Three runs of one config, seeds 0-2, 3-5 and 6-8; the newest recorded another `key` in meta.json. The two
    alike pool; the third stays apart, and both groups say why.
    Old code: one comparison, "runs 20250101-000003 + 20250101-000002 + 20250101-000001 (pooled)", "note: pooled 3
    runs whose configs differ only in seeds: seeds 6, 7, 8 from 20250101-000003; seeds 3, 4, 5 from
    20250101-000002; seeds 0, 1, 2 from 20250101-000001" (the same for device, torch and engine)."""

    def trials(seeds):
        return {
            (v, s): (line(s + 50 * (v == "bn"), 0.02 + 0.005 * (v == "bn"), 20), 0.8 + 0.01 * s)
            for s in seeds
            for v in ("bn", "plain")
        }

    runs = [
        write_run(
            tmp_path,
            trials(range(3 * i, 3 * i + 3)),
            name="pool",
            run_id=f"20250101-00000{i + 1}",
            batch_size=10,
            meta=META if i < 2 else {**META, key: other},
        )
        for i in range(3)
    ]
    comparisons, skipped = compare_runs([tmp_path])
    assert skipped == [] and len(comparisons) == 2
    by_sources = {tuple(sorted(p.name for p in (c.results.sources or [c.results.dir]))): c for c in comparisons}
    assert set(by_sources) == {("20250101-000001", "20250101-000002"), ("20250101-000003",)}
    alike, apart = by_sources[("20250101-000001", "20250101-000002")], by_sources[("20250101-000003",)]
    assert list(alike.results.config.seeds) == [0, 1, 2, 3, 4, 5] and alike.table.trials.tolist() == [6, 6]
    assert list(apart.results.config.seeds) == [6, 7, 8] and apart.table.trials.tolist() == [3, 3]
    assert any(n.startswith("pooled 2 runs") for n in alike.results.notes)
    assert f"not pooled with 20250101-000003 ({key} {META[key]} vs {other})" in alike.results.notes
    assert f"not pooled with 20250101-000002 ({key} {other} vs {META[key]})" in apart.results.notes
    assert runs[2].name == "20250101-000003"
