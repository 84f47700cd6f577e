"""Fixed cost of `bnbench run`: its wall time minus the time it spends training, next to torch's import time.

What it measures
    torch     `python -c "import torch"`, wall clock, best of --repeat: the floor of any run.
    runs      `python -m bnbench run CONFIG -q --jobs J --out TMP [--set ...]` as a child process, wall clock end to
              end, best of --repeat, for each J in --jobs:
                quick        configs/quick.yaml as shipped (digits, 10 trials of 5 epochs);
                mlp-1epoch   configs/mlp.yaml --set training.epochs=1 on the CIFAR-10 image folder at --root
                             (skipped without --root; its decode cache is warmed by one untimed run first).
              training = each trial's epoch seconds (epochs.csv: each epoch's training and its test evaluation)
              laid out as the runner hands trials to J workers (in order, to the first free one): the makespan;
              fixed = wall - training: interpreter start, imports, data loading, run folder, workers, per-epoch
              checkpoints, the final row sort and verdict.
    Goal (issue 12): fixed <= torch import + 1 s, with --jobs 1 and 2.
    On the CPU the --jobs workers are forked (no second torch import: 1.6 s less per run; bnbench/backends/
    workers.py).

Run
    python benchmarks/startup.py                          # quick only
    python benchmarks/startup.py --root /work/data        # and the 1-epoch tutorial MLP on CIFAR-10
    On an otherwise idle machine: other processes on 2 cores inflate every wall-clock number.
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - start


def training_seconds(out: Path, jobs: int) -> float:
    """How long the training itself keeps the run busy: each trial's epoch seconds summed, laid out as the runner
    hands trials out (in order, each to the first free worker); the makespan."""
    (run_dir,) = [p for p in out.glob("*/*") if (p / "epochs.csv").is_file()]
    with open(run_dir / "epochs.csv") as f:
        rows = list(csv.DictReader(f))
    trials: dict[tuple, float] = {}
    for r in rows:  # rows are in trial order
        key = (r["variant"], r["seed"])
        trials[key] = trials.get(key, 0.0) + float(r["seconds"])
    workers = [0.0] * min(jobs, len(trials))
    for seconds in trials.values():
        workers[workers.index(min(workers))] += seconds
    return max(workers)


def measure(args: list[str], jobs: int, repeat: int) -> tuple[float, float]:
    """Best-of-`repeat` (wall, training) of one `bnbench run`."""
    best = None
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds = wall([sys.executable, "-m", "bnbench", "run", *args, "-q", "--jobs", str(jobs), "--out", tmp])
            result = (seconds, training_seconds(Path(tmp), jobs))
        if best is None or result[0] - result[1] < best[0] - best[1]:
            best = result
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, help="CIFAR-10 image folder (train/, test/) for the mlp-1epoch run")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    torch_import = min(wall([sys.executable, "-c", "import torch"]) for _ in range(args.repeat))
    runs = {"quick": ["quick"]}
    if args.root:
        runs["mlp-1epoch"] = [
            "mlp",
            "--set",
            "training.epochs=1",
            "--set",
            "dataset.name=imagefolder",
            "--set",
            f"dataset.root={args.root}",
        ]
        wall(
            [
                sys.executable,
                "-c",
                "from bnbench.experiment.config import DatasetConfig; from bnbench.experiment.data import "
                f"load_dataset; load_dataset(DatasetConfig(name='imagefolder', root={str(args.root)!r}))",
            ]
        )  # warm
    print(f"torch import: {torch_import:.2f} s (best of {args.repeat}); goal: fixed <= {torch_import + 1:.2f} s")
    print(f"{'run':<12} {'jobs':>4} {'wall s':>8} {'training s':>10} {'fixed s':>8}  goal")
    for name, run_args in runs.items():
        for jobs in args.jobs:
            total, training = measure(run_args, jobs, args.repeat)
            fixed = total - training
            verdict = "met" if fixed <= torch_import + 1 else "missed"
            print(f"{name:<12} {jobs:>4} {total:>8.2f} {training:>10.2f} {fixed:>8.2f}  {verdict}")


if __name__ == "__main__":
    main()
