"""CPU benchmark: the PyTorch tutorial's training loop vs `bnbench run`, same data, same experiment.

What it measures
    (a) tutorial  The "Batch Normalization with PyTorch" tutorial exactly as written: ImageFolder(root/train,
                  ToTensor()) (or CIFAR10(root, ToTensor()) when root holds torchvision's binary files),
                  DataLoader(batch_size=10, shuffle=True, num_workers=1), torch.manual_seed(42), the MLP
                  3072-64-BN-ReLU-32-BN-ReLU-10, CrossEntropyLoss, Adam(lr=1e-4), the tutorial's loop (its
                  every-500-batches loss lines are collected, not printed). It is run twice, once with and once
                  without the two BatchNorm1d layers, one after the other, E epochs each, in one child process
                  (torch's default thread count, the tutorial sets none).
    (b) bnbench   `python -m bnbench run configs/mlp.yaml --set dataset.name=imagefolder --set dataset.root=ROOT
                  --set training.epochs=E --out TMP -q --jobs J`, for each J in --jobs: the same two variants,
                  seed 42, E epochs each. bnbench also evaluates the test split after every epoch and writes its
                  run folder; the tutorial does neither, so bnbench's numbers include extra work.
    Every contender runs as a child process and is timed end to end by wall clock: process start, imports,
    data loading and training. Totals are divided by the number of mini-batches trained (2 variants x E epochs
    x 5,000) and compared with the tutorial's total ("speedup" = tutorial seconds / contender seconds).
    Memory: the peak, over the run, of the sum over the contender's process tree (the process plus its
    DataLoader or --jobs workers), sampled from /proc every 0.2 s: RSS (shared pages counted once per process,
    so libtorch and shared data are counted several times) and PSS (shared pages split between the
    processes that map them: the tree's real footprint).
    Losses: the final epoch's mean training loss per variant (mean of that epoch's per-batch losses) from the
    tutorial loop and from each bnbench run (batches.csv). They agree in distribution, not bitwise: bnbench
    draws its batch order and initial weights from its own seeded generators.

Decoded-image cache
    bnbench decodes an image folder once and caches the uint8 tensors next to the data, in ROOT/.bnbench-cache/
    (or ~/.cache/bnbench/ when ROOT is read-only). The first bnbench run ever on a folder pays the decoding
    (about 20 s for the CIFAR-10 JPEGs on 2 cores); later runs load the cache. Before timing, this script makes one
    untimed warm-up call that only builds (or loads) the cache, so the table shows the steady state.

Earlier measurements (as bnbench's docstrings and comments stated them, each with the machine it named)
    bnbench/engines/direct.py        For the tutorial's tiny MLP, autograd's bookkeeping (graph nodes, AccumulateGrad,
                             module calls) is about a third of a training step on the CPU: 1.09 -> 0.76 ms per BN
                             step, measured on the 2-core VM.
    engines/fast_optim.py    fast_step (the fused Adam kernel called without optimizer.step's wrappers) saves
                             ~130 us of Python per step (0.32 -> 0.19 ms for the tutorial MLP on the 2-core CPU),
                             an eighth of the whole step.
    bnbench/backends/        Without BN, Adam's tiny second moments go denormal and made the plain MLP's step 2.3x
                             slower (2.4 vs 1.06 ms on the 2-core CPU), hence flushing denormals to zero.
    bnbench/experiment/data.py          Listing an image folder with os.scandir and plain strings: pathlib cost 2 s per
                             CIFAR-10 listing.
    bnbench/views/progress.py      The one-time decode of an image folder: a first CIFAR-10 run, ~25 s of 60,000 JPEGs.

Run
    mkdir -p /tmp/cifar10 && tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10   # once
    python benchmarks/cpu.py                       # 5 epochs (the tutorial's), --jobs 1 and 2: several minutes
    python benchmarks/cpu.py --epochs 1            # quick mode
    python benchmarks/cpu.py --root /work/data --jobs 1 2 --skip-tutorial --json bench.json
    ROOT defaults to $BNBENCH_CIFAR, else /tmp/cifar10. Linux only (/proc, wait4).
    Run it on an otherwise idle machine: on 2 cores a test suite running beside it inflates the wall-clock
    numbers unevenly. The 'others' column shows how much CPU other processes took, and the script warns.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs" / "mlp.yaml"
BATCH_SIZE = 10
VARIANTS = {"batchnorm": True, "plain": False}  # bnbench's variant names in configs/mlp.yaml -> BN layers or not


# ---- the data ------------------------------------------------------------------------------------------------------


def data_kind(root: Path) -> str:
    """'cifar10' when root holds torchvision's binary CIFAR-10, 'imagefolder' when it holds train/<class>/*."""
    if (root / "cifar-10-batches-py").is_dir():
        return "cifar10"
    if (root / "train").is_dir():
        return "imagefolder"
    sys.exit(
        f"error: no CIFAR-10 under '{root}'. Unpack it first:\n"
        f"    mkdir -p /tmp/cifar10 && tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C /tmp/cifar10\n"
        f"(from the repository root), then pass --root /tmp/cifar10 or set BNBENCH_CIFAR."
    )


def train_size(root: Path, kind: str) -> int:
    if kind == "cifar10":
        return 50_000
    from bnbench.experiment.data import IMAGE_SUFFIXES

    return sum(
        1
        for c in (root / "train").iterdir()
        if c.is_dir() and not c.name.startswith(".")
        for f in c.iterdir()
        if f.suffix.lower() in IMAGE_SUFFIXES
    )


# ---- (a) the tutorial loop: runs in a child process (`cpu.py --tutorial-child ROOT EPOCHS OUT.json`) -------------


def tutorial_run(root: Path, kind: str, epochs: int, batchnorm: bool) -> dict:
    """One run of the tutorial's script, with or without BatchNorm1d; returns its seconds and losses."""
    import torch
    from torch import nn
    from torchvision import datasets, transforms

    start = time.perf_counter()
    torch.manual_seed(42)
    if kind == "cifar10":
        dataset = datasets.CIFAR10(str(root), download=False, transform=transforms.ToTensor())
    else:
        dataset = datasets.ImageFolder(str(root / "train"), transform=transforms.ToTensor())
    trainloader = torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, num_workers=1)
    bn = (lambda n: [nn.BatchNorm1d(n)]) if batchnorm else (lambda n: [])
    mlp = nn.Sequential(
        nn.Flatten(),
        nn.Linear(32 * 32 * 3, 64),
        *bn(64),
        nn.ReLU(),
        nn.Linear(64, 32),
        *bn(32),
        nn.ReLU(),
        nn.Linear(32, 10),
    )
    loss_function = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(mlp.parameters(), lr=1e-4)
    log, epoch_means = [], []
    for epoch in range(0, epochs):
        current_loss, epoch_losses = 0.0, []
        for i, data in enumerate(trainloader, 0):
            inputs, targets = data
            optimizer.zero_grad()
            outputs = mlp(inputs)
            loss = loss_function(outputs, targets)
            loss.backward()
            optimizer.step()
            value = loss.item()
            current_loss += value
            epoch_losses.append(value)
            if i % 500 == 499:
                log.append([epoch + 1, i + 1, current_loss / 500])  # the tutorial prints this line
                current_loss = 0.0
        epoch_means.append(sum(epoch_losses) / len(epoch_losses))
    return {
        "seconds": time.perf_counter() - start,
        "batches": epochs * len(trainloader),
        "epoch_mean_loss": epoch_means,
        "log": log,
    }


def tutorial_child(root: str, epochs: str, out: str) -> None:
    import torch

    root, kind = Path(root), data_kind(Path(root))
    runs = {name: tutorial_run(root, kind, int(epochs), bn) for name, bn in VARIANTS.items()}
    Path(out).write_text(json.dumps({"threads": torch.get_num_threads(), "variants": runs}))


# ---- measuring a child process tree ------------------------------------------------------------------------------


class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process and all its descendants; keeps the peaks (bytes)."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval, self.stop = pid, interval, threading.Event()
        self.peak_rss = self.peak_pss = 0

    def run(self):
        while not self.stop.is_set():
            rss = pss = 0
            for pid in self.tree():
                rss_one, pss_one = _memory(pid)
                rss, pss = rss + rss_one, pss + pss_one
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.stop.wait(self.interval)

    def tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found


def _memory(pid: int) -> tuple[int, int]:
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        pss = next(
            (
                int(line.split()[1]) * 1024
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                if line.startswith("Pss:")
            ),
            0,
        )
        return rss, pss
    except (OSError, ValueError, IndexError):  # the process exited between listing and reading
        return 0, 0


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat: all but idle and iowait)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, open("/proc/stat").readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def measure(cmd: list[str], log: Path) -> dict:
    """Run cmd (stdout and stderr to `log`), timing it by wall clock and sampling its process tree's memory."""
    busy = busy_cpu_seconds()
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        sampler = TreeMemory(proc.pid)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)  # usage.ru_maxrss: the largest single process of the tree, KiB
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop.set()
        sampler.join()
    return {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "returncode": proc.returncode,
        "peak_rss_mb": sampler.peak_rss / 2**20,
        "peak_pss_mb": sampler.peak_pss / 2**20,
        "largest_process_mb": usage.ru_maxrss / 1024,
        "others_cpu_seconds": max(0.0, busy_cpu_seconds() - busy - (usage.ru_utime + usage.ru_stime)),
    }


def failed(what: str, result: dict, log: Path) -> None:
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
    print(f"  {what} FAILED (exit status {result['returncode']}); last lines of its output:\n{tail}", flush=True)


# ---- (b) bnbench ---------------------------------------------------------------------------------------------------


def warm_cache(root: Path, kind: str, tmp: Path) -> None:
    """Untimed: build (or load) bnbench's decoded-image cache, so no timed run pays the decoding."""
    if kind != "imagefolder":
        print("bnbench cache warm-up: not needed (torchvision's binary CIFAR-10 is not decoded)", flush=True)
        return
    cache = root / ".bnbench-cache"
    state = "found" if cache.is_dir() and any(cache.iterdir()) else "not found, decoding all images"
    code = (
        "from bnbench.experiment.config import DatasetConfig; from bnbench.experiment.data import load_dataset; "
        f"load_dataset(DatasetConfig(name='imagefolder', root={str(root)!r}))"
    )
    print(f"bnbench cache warm-up (untimed, builds {cache} or loads it; cache {state}) ...", end=" ", flush=True)
    result = measure([sys.executable, "-c", code], tmp / "warmup.log")
    print(f"{result['seconds']:.1f} s", flush=True)
    if result["returncode"]:
        failed("warm-up", result, tmp / "warmup.log")


def bnbench_run(root: Path, kind: str, epochs: int, jobs: int, tmp: Path) -> dict:
    out = tmp / f"bnbench-j{jobs}"
    dataset = (
        ["--set", "dataset.name=imagefolder"]
        if kind == "imagefolder"
        else ["--set", "dataset.name=cifar10", "--set", "dataset.download=false"]
    )
    cmd = [
        sys.executable,
        "-m",
        "bnbench",
        "run",
        str(CONFIG if CONFIG.is_file() else "mlp"),
        *dataset,
        "--set",
        f"dataset.root={root}",
        "--set",
        f"training.epochs={epochs}",
        "--out",
        str(out),
        "-q",
        "--jobs",
        str(jobs),
    ]
    result = measure(cmd, tmp / f"bnbench-j{jobs}.log") | {"command": cmd}
    if result["returncode"]:
        failed(f"bnbench --jobs {jobs}", result, tmp / f"bnbench-j{jobs}.log")
        return result
    import pandas as pd

    batches = pd.read_csv(next(out.glob("*/*/batches.csv")))
    last = batches[batches["epoch"] == epochs]
    result["final_epoch_mean_loss"] = last.groupby("variant")["loss"].mean().to_dict()
    result["batches"] = len(batches)
    return result


# ---- report --------------------------------------------------------------------------------------------------------


def others(r: dict) -> float:
    return 100 * r["others_cpu_seconds"] / (r["seconds"] * os.cpu_count())


def report(rows: dict[str, dict], batches: int, base: float | None) -> None:
    print(
        f"\n{'contender':<24}{'total s':>9}{'ms/batch':>10}{'speedup':>9}{'CPU s':>8}{'peak PSS MB':>13}"
        f"{'peak RSS MB':>13}{'largest MB':>12}{'others':>8}"
    )
    for name, r in rows.items():
        if r["returncode"]:
            print(f"{name:<26}{'failed (exit status ' + str(r['returncode']) + ')':>30}")
            continue
        speedup = f"{base / r['seconds']:.2f}x" if base else "-"
        print(
            f"{name:<24}{r['seconds']:>9.1f}{1000 * r['seconds'] / batches:>10.3f}{speedup:>9}"
            f"{r['cpu_seconds']:>8.0f}{r['peak_pss_mb']:>13.0f}{r['peak_rss_mb']:>13.0f}"
            f"{r['largest_process_mb']:>12.0f}{others(r):>7.0f}%"
        )
    print(
        f"  {batches:,} mini-batches each (2 variants x epochs x batches per epoch). total: wall clock, end to end;"
        f" CPU: user+sys of the process tree; PSS/RSS: peak sum over the process tree (sampled every 0.2 s);"
        f" largest: biggest single process (wait4); others: CPU used by processes outside the tree, in % of"
        f" the machine's {os.cpu_count()} cores x the row's seconds."
    )
    if any(others(r) > 5 for r in rows.values() if not r["returncode"]):
        print(
            "  WARNING: other processes used the CPU during the runs ('others' above 5%); the seconds are inflated"
            " and not comparable between rows. Rerun on an idle machine."
        )


def report_losses(tutorial: dict | None, runs: dict[str, dict], epochs: int) -> None:
    columns = {"tutorial": {v: r["epoch_mean_loss"][-1] for v, r in tutorial["variants"].items()}} if tutorial else {}
    columns |= {name: r["final_epoch_mean_loss"] for name, r in runs.items() if "final_epoch_mean_loss" in r}
    if not columns:
        return
    print(f"\nfinal-epoch (epoch {epochs}) mean training loss, per variant:")
    print(f"{'variant':<12}" + "".join(f"{name:>20}" for name in columns))
    for variant in VARIANTS:
        print(f"{variant:<12}" + "".join(f"{c.get(variant, float('nan')):>20.4f}" for c in columns.values()))
    print("  same data and setup, different random streams: expect close values, not equal ones")


# ---- main ----------------------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--tutorial-child":
        return tutorial_child(*sys.argv[2:])
    parser = argparse.ArgumentParser(description="Time the PyTorch tutorial's loop against `bnbench run` on CPU.")
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("BNBENCH_CIFAR", "/tmp/cifar10")),
        help="CIFAR-10: imagefolder (train/<class>/*) or torchvision binary [default: $BNBENCH_CIFAR or /tmp/cifar10]",
    )
    parser.add_argument("--epochs", type=int, default=5, help="epochs per variant [default: 5; 1 = quick mode]")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="bnbench --jobs values [default: 1 2]")
    parser.add_argument("--skip-tutorial", action="store_true", help="do not run (a), the tutorial loop")
    parser.add_argument("--json", type=Path, help="also write all numbers to this JSON file")
    args = parser.parse_args()
    root = args.root.resolve()
    kind = data_kind(root)
    n_train = train_size(root, kind)
    batches = len(VARIANTS) * args.epochs * math.ceil(n_train / BATCH_SIZE)

    import torch

    print(
        f"CPU benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(
        f"data: {root} ({kind}, {n_train:,} training images); {args.epochs} epoch(s) per variant, batch size "
        f"{BATCH_SIZE}, variants {', '.join(VARIANTS)}\n",
        flush=True,
    )

    rows, tutorial, runs = {}, None, {}
    with tempfile.TemporaryDirectory(prefix="bnbench-cpu-") as tmp:
        tmp = Path(tmp)
        if not args.skip_tutorial:
            print(
                "(a) tutorial loop (ImageFolder/ToTensor, DataLoader num_workers=1), both variants ...",
                end=" ",
                flush=True,
            )
            result = measure(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "--tutorial-child",
                    str(root),
                    str(args.epochs),
                    str(tmp / "tutorial.json"),
                ],
                tmp / "tutorial.log",
            )
            rows["(a) tutorial loop"] = result
            if result["returncode"]:
                failed("tutorial loop", result, tmp / "tutorial.log")
            else:
                tutorial = json.loads((tmp / "tutorial.json").read_text())
                result |= tutorial
                loops = {v: r["seconds"] for v, r in tutorial["variants"].items()}
                print(f"{result['seconds']:.1f} s", flush=True)
                print(
                    f"    training loops only (dataset + DataLoader + {args.epochs} epoch(s), per variant): "
                    + ", ".join(f"{v} {s:.1f} s" for v, s in loops.items())
                    + f" = {sum(loops.values()):.1f} s, {1000 * sum(loops.values()) / batches:.3f} ms per "
                    f"mini-batch ({tutorial['threads']} torch threads)",
                    flush=True,
                )
        warm_cache(root, kind, tmp)
        for jobs in args.jobs:
            print(f"(b) bnbench run --jobs {jobs} ...", end=" ", flush=True)
            result = bnbench_run(root, kind, args.epochs, jobs, tmp)
            if not result["returncode"]:
                print(f"{result['seconds']:.1f} s", flush=True)
            runs[f"bnbench --jobs {jobs}"] = rows[f"(b) bnbench --jobs {jobs}"] = result

    base = rows.get("(a) tutorial loop", {})
    report(rows, batches, None if base.get("returncode", 1) else base["seconds"])
    report_losses(tutorial, runs, args.epochs)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "root": str(root),
                    "kind": kind,
                    "epochs": args.epochs,
                    "batches": batches,
                    "cpu_count": os.cpu_count(),
                    "torch": torch.__version__,
                    "results": rows,
                },
                indent=2,
                default=str,
            )
        )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
