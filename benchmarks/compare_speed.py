"""How long `bnbench compare` takes on 10 runs of 25,000 mini-batch rows each (the bar: well under 3 s on 2 cores).

Writes synthetic runs into a temporary folder: 2 variants x 5 seeds x 5 epochs x 500 batches = 25,000 rows of
batches.csv per run (--rows changes the batches per epoch), noisy decreasing losses, one run in ten with a
diverged trial. Then times, in this process, best of --repeat:
  compare   find the runs, read each CSV once, check them and compute every statistic (compare_runs)
  render    the table, markdown, csv, json and latex outputs, and the --windows table
  plot      the --plot PNG (one row of panels per run)
and once, as a child process, the whole command `python -m bnbench compare FOLDER --format csv`: start-up and
imports (torch among them) included.

Run: python benchmarks/compare_speed.py [--runs 10] [--rows 25000] [--repeat 3]
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

from bnbench.compare import compare_runs
from bnbench.plots import save_plot
from bnbench.report import FORMATS, comparison_output

VARIANTS, SEEDS, EPOCHS = ["batchnorm", "plain"], [0, 1, 2, 3, 4], 5


def write_run(folder: Path, index: int, batches: int) -> None:
    run_dir = folder / "speed" / f"20250101-{index:06d}"
    run_dir.mkdir(parents=True)
    config = {"name": "speed", "seeds": SEEDS, "dataset": {"name": "digits"}, "baseline": "plain",
              "variants": [{"name": "batchnorm"}, {"name": "plain", "norm": "none"}],
              "training": {"epochs": EPOCHS, "batch_size": 10, "log_every": 100}, "device": "cpu"}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "meta.json").write_text('{"status": "complete"}\n')
    rng = np.random.default_rng(index)
    steps = np.arange(1, EPOCHS * batches + 1)
    batch_rows, epoch_rows = [], []
    for variant in VARIANTS:
        for seed in SEEDS:
            rate = 3e-3 if variant == "batchnorm" else 1.5e-3
            loss = 2.3 * np.exp(-rate * steps) + 0.1 + rng.normal(0, 0.05, len(steps)) ** 2
            if index == 0 and variant == "plain" and seed == 4:
                loss[-7:] = np.nan  # a diverged trial: its rows end at the first NaN
                loss = loss[:-6]
            n = len(loss)
            batch_rows.append(pd.DataFrame({"variant": variant, "seed": seed, "epoch": (steps[:n] - 1) // batches + 1,
                                            "batch": (steps[:n] - 1) % batches + 1, "step": steps[:n], "loss": loss}))
            done = int(batch_rows[-1].epoch.max())
            means = batch_rows[-1].groupby("epoch").loss.mean().to_numpy()
            epoch_rows.append(pd.DataFrame({"variant": variant, "seed": seed, "epoch": np.arange(1, done + 1),
                                            "train_loss": means, "train_acc": 0.9, "test_loss": means * 1.1,
                                            "test_acc": np.linspace(0.8, 0.95, done) - 0.01 * seed,
                                            "seconds": rng.uniform(1, 2, done)}))
    pd.concat(batch_rows).to_csv(run_dir / "batches.csv", index=False, float_format="%.9g", na_rep="nan")
    pd.concat(epoch_rows).to_csv(run_dir / "epochs.csv", index=False, float_format="%.9g", na_rep="nan")


def best(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=25_000, help="batches.csv rows per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    batches = args.rows // (len(VARIANTS) * len(SEEDS) * EPOCHS)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for index in range(args.runs):
            write_run(folder, index, batches)
        comparisons, skipped = compare_runs([folder])
        assert len(comparisons) == args.runs and not skipped, skipped
        rows = len(comparisons[0].results.batches)
        print(f"{args.runs} runs x {rows:,} batch rows ({len(VARIANTS)} variants x {len(SEEDS)} seeds x {EPOCHS} "
              f"epochs x {batches} batches)")
        compare = best(args.repeat, lambda: compare_runs([folder]))

        def render():
            fresh, _ = compare_runs([folder])
            for fmt in FORMATS:
                comparison_output(fresh, fmt, width=80)  # the table at 80 columns: measured and laid out
            comparison_output(fresh, "markdown", windows=True)
        render_and_compare = best(args.repeat, render)
        plot = best(1, lambda: save_plot(comparisons, folder / "speed.png"))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bnbench", "compare", str(folder), "--format", "csv"], check=True,
                       stdout=subprocess.DEVNULL)
        command = time.perf_counter() - start
    print(f"compare (read + statistics):          {compare:6.2f} s")
    print(f"render all formats + windows:         {render_and_compare - compare:6.2f} s")
    print(f"plot ({args.runs} rows of panels):            {plot:6.2f} s")
    print(f"`python -m bnbench compare --format csv`: {command:6.2f} s (process start and imports included)")


if __name__ == "__main__":
    main()
