"""How long `bnbench compare` takes on many runs (the bars, on 2 cores: 300 runs compared in under 10 s and plotted
in under 30 s).

Writes synthetic runs into a temporary folder: 2 variants x 5 seeds x 5 epochs x 500 batches = 25,000 rows of
batches.csv per run (--rows changes the batches per epoch; 7,200 is quick.yaml's size), evaluations every 50 steps,
noisy decreasing losses and accuracies, trials in a finished run's order, a diverged trial in the first run. Then
times, in this process, best of --repeat:
  compare   find the runs, read each CSV once, check them and compute every statistic (compare_runs; from
            compare.POOL_FROM runs on, in one worker process per CPU)
  render    the table, markdown, csv, json and latex outputs, and the --windows table
  plot      the --plot PNGs: the first plots.MAX_RUNS runs, plots.PER_PAGE a page
and once each, as a child process, the whole `python -m bnbench compare FOLDER` with --format csv, with the boxed
table (to a pipe), and with --format csv --plot FILE.png: start-up and imports included.

Seconds on the 2-core AMD EPYC VM, other sessions keeping about one core busy, before -> after round 2 of the
reliability work (config parsed once per distinct config.yaml, rows numbered by trial once and worked on as
arrays instead of grouped per metric, the table built column by column, runs shared out over the CPUs; plots in
pages of fixed layout instead of one constrained-layout figure with a row per run):
  runs x rows      compare         command: csv    table           --plot
  10 x 25,000      1.38 -> 0.34    3.73 -> 2.30    4.40 -> 2.65    11.5 -> 8.3
  50 x 7,200       5.09 -> 1.00    7.21 -> 2.77    9.24 -> 3.33    > 20 min -> 10.8 (20 runs drawn)
  300 x 7,200      39.4 -> 5.95    42.7 -> 8.03    47.6 -> 12.5    > 30 min -> 16.1 (20 runs drawn)
(the "> 20 min" and "> 30 min" as reported in the issue; bnbench/views/plots.py: constrained layout, over one
figure with a row per run, grew far faster than the rows: 10 runs 8.6 s, 47 runs 72 s, 50 runs over 20 minutes).
Then the t-test written out with scipy.special instead of scipy.stats (0.9 s of import, 1 ms a call)
and the boxed table's width counted instead of measured by rich, 300 x 7,200 on an idle machine: compare 5.05 s,
command csv 5.91 s, table 8.72 s, csv --plot 13.15 s.
The runs share one config and meta.json, so they would pool into one comparison: they are compared with
--no-pool (pool=False), as 300 runs of different settings would be.

After the analysis rebuild (bnbench/analysis/: more measures per comparison, both p-values, detectable effects,
every declared column in every table; the default table is the compact view), 300 x 7,200, the old commit and
the new one back to back on the same VM (load average about 1-2 from other sessions):
  compare (in this process)   old 4.76 s, new 4.99 s; interleaved best-of-3 pairs, old 3.84-5.59 s (median 4.6),
                              new 3.64-5.43 s (median 4.9): the same within the VM's drift
  command: csv                old 6.29 s, new 5.41 s
  command: table (a pipe)     old 7.59 s, new 6.88 s
  command: csv --plot         old 13.12 s, new 12.02 s

With the skew-corrected decisions (a third p-value, intervals' level and adjustment columns, the rank rule's
columns: a wider table), 300 x 7,200 on the 2-core Intel Xeon VM, 2026-12-06, the old commit (bcbf97d) and the new
one in turn, twice, with other work beside them:
  compare (in this process)   old 3.87, 2.94 s; new 3.51, 3.50 s
  command: csv                old 4.34, 4.50 s; new 4.62, 5.02 s
  command: table (a pipe)     old 4.00, 4.16 s; new 4.27, 4.73 s
and `python -m bnbench compare FOLDER --no-pool --format csv` by hand, alternating: old 4.67, 4.93, 4.88 s, new
5.42, 4.91, 4.68 s: the same within the VM's drift. Rendering every format got slower with the wider table
(markdown and latex turned it into rows twice, csv and json copied it to drop no column): both fixed; 40 runs,
old -> new, markdown 0.19 -> 0.21 s, latex 0.19 -> 0.24 s, csv 0.04 -> 0.03 s, json 0.05 -> 0.04 s.

Run: python benchmarks/compare_speed.py [--runs 10] [--rows 25000] [--repeat 3]
     python benchmarks/compare_speed.py --runs 300 --rows 7200 --repeat 1
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from bnbench.analysis import compare_runs
from bnbench.views.compare_text import FORMATS, comparison_output
from bnbench.views.plots import MAX_RUNS, PER_PAGE, save_plot

VARIANTS, SEEDS, EPOCHS, EVAL_EVERY = ["batchnorm", "plain"], [0, 1, 2, 3, 4], 5, 50


def write_run(folder: Path, index: int, batches: int) -> None:
    run_dir = folder / "speed" / f"20250101-{index:06d}"
    run_dir.mkdir(parents=True)
    config = {
        "name": "speed",
        "seeds": SEEDS,
        "dataset": {"name": "digits"},
        "baseline": "plain",
        "variants": [{"name": "batchnorm"}, {"name": "plain", "norm": "none"}],
        "training": {"epochs": EPOCHS, "batch_size": 10, "log_every": 100, "eval_every": EVAL_EVERY},
        "device": "cpu",
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "meta.json").write_text('{"status": "complete"}\n')
    rng = np.random.default_rng(index)
    steps = np.arange(1, EPOCHS * batches + 1)
    batch_rows, epoch_rows, eval_rows = [], [], []
    for seed in SEEDS:  # trials in the order a finished run's files hold them
        for variant in VARIANTS:
            rate = 3e-3 if variant == "batchnorm" else 1.5e-3
            loss = 2.3 * np.exp(-rate * steps) + 0.1 + rng.normal(0, 0.05, len(steps)) ** 2
            if index == 0 and variant == "plain" and seed == 4:
                loss[-7:] = np.nan  # a diverged trial: its rows end at the first NaN
                loss = loss[:-6]
            n = len(loss)
            batch_rows.append(
                pd.DataFrame(
                    {
                        "variant": variant,
                        "seed": seed,
                        "epoch": (steps[:n] - 1) // batches + 1,
                        "batch": (steps[:n] - 1) % batches + 1,
                        "step": steps[:n],
                        "loss": loss,
                    }
                )
            )
            done = int(batch_rows[-1].epoch.max())
            means = batch_rows[-1].groupby("epoch").loss.mean().to_numpy()
            epoch_rows.append(
                pd.DataFrame(
                    {
                        "variant": variant,
                        "seed": seed,
                        "epoch": np.arange(1, done + 1),
                        "train_loss": means,
                        "train_acc": 0.9,
                        "test_loss": means * 1.1,
                        "test_acc": np.linspace(0.8, 0.95, done) + rng.normal(0, 0.01, done),
                        "seconds": rng.uniform(1, 2, done),
                    }
                )
            )
            at = np.union1d(np.arange(EVAL_EVERY, n + 1, EVAL_EVERY), [*np.arange(1, done) * batches, n])
            # every EVAL_EVERY steps and at each epoch's last step, the diverged one's too
            acc = 0.95 - 0.15 * np.exp(-rate * at) + rng.normal(0, 0.01, len(at))
            eval_rows.append(
                pd.DataFrame(
                    {
                        "variant": variant,
                        "seed": seed,
                        "epoch": (at - 1) // batches + 1,
                        "step": at,
                        "test_loss": loss[at - 1] * 1.1,
                        "test_acc": acc,
                    }
                )
            )
    pd.concat(batch_rows).to_csv(run_dir / "batches.csv", index=False, float_format="%.9g", na_rep="nan")
    pd.concat(epoch_rows).to_csv(run_dir / "epochs.csv", index=False, float_format="%.9g", na_rep="nan")
    pd.concat(eval_rows).to_csv(run_dir / "evals.csv", index=False, float_format="%.9g", na_rep="nan")


def best(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def command(*args: str) -> float:
    """Wall seconds of `python -m bnbench compare ARGS` in a child process, output to a pipe (no terminal)."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bnbench", "compare", "--no-pool", *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=25_000, help="batches.csv rows per run (7,200: quick.yaml's)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batches = args.rows // (len(VARIANTS) * len(SEEDS) * EPOCHS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for index in range(args.runs):
            write_run(folder, index, batches)
        comparisons, skipped = compare_runs([folder], pool=False)
        assert len(comparisons) == args.runs and not skipped, skipped
        rows = len(comparisons[0].results.batches)
        print(
            f"{args.runs} runs x {rows:,} batch rows ({len(VARIANTS)} variants x {len(SEEDS)} seeds x {EPOCHS} "
            f"epochs x {batches} batches)"
        )
        compare = best(args.repeat, lambda: compare_runs([folder], pool=False))

        def render():
            fresh, _ = compare_runs([folder], pool=False)
            for fmt in FORMATS:
                comparison_output(fresh, fmt, width=80)  # the table at 80 columns: measured and laid out
            comparison_output(fresh, "markdown", windows=True)

        render_and_compare = best(args.repeat, render)
        plot = best(1, lambda: save_plot(comparisons, folder / "speed.png"))
        csv, table = command(str(folder), "--format", "csv"), command(str(folder))
        plotted = command(str(folder), "--format", "csv", "--plot", str(folder / "speed.png"))
    drawn = min(args.runs, MAX_RUNS)
    for label, seconds in [
        ("compare (read + statistics)", compare),
        ("render all formats + windows", render_and_compare - compare),
        (f"plot ({drawn} runs, {PER_PAGE} a page)", plot),
        ("`python -m bnbench compare --format csv`", csv),
        ("`python -m bnbench compare` (table)", table),
        ("`... --format csv --plot speed.png`", plotted),
    ]:
        print(f"{label + ':':<42}{seconds:6.2f} s")
    print("(commands: process start and imports included)")


if __name__ == "__main__":
    main()
