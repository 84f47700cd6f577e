"""GPU benchmark: the eager, graph and stacked engines on the tutorial experiment, and on 2 variants x 10 seeds.

What it measures (training time only: data already on the device, wall clock around the epochs, synchronised)
    tutorial   configs/mlp.yaml: MLP 3072-64-32-10, BN vs none, Adam 1e-4, batch 10, seed 42, E epochs
               - eager:   one trial after the other, bnbench.engines.eager.Trainer
               - graph:   one trial after the other, bnbench.engines.graph.GraphTrainer (steps captured in CUDA graphs)
               - stacked: both trials in one batched model, bnbench.engines.stacked.StackedTrainer
    seeds      the same with seeds 0..9 (20 trials): graph one trial at a time (extrapolated from one trial per
               variant, said so in the output) vs stacked (all 20 in one model)
    Prints seconds, ms per mini-batch per trial, and ratios; --json FILE writes them.
    Issue 6's targets (one H100): tutorial under 15 s with the best engine (about 85 s eager); 20 trials stacked
    under 3x one trial on the graph engine. An eager step of the tutorial's model is a few dozen tiny kernel
    launches and the GPU waits on Python (about 1.7 ms per step on an H100, issue 6): the graph engine's reason.
    The stacked engine makes each trial parameter's .grad a view of the fresh stacked gradient: ~1 us a tensor,
    where accumulating into kept .grad tensors cost 8 ms a step (memory traffic; tutorial MLP, K=20).

Run (on a machine with a CUDA GPU)
    python benchmarks/gpu.py --root /tmp/cifar10              # CIFAR-10 as an image folder (see docs/tutorial.md)
    python benchmarks/gpu.py                                  # no data at hand: random uint8 data of CIFAR-10's
                                                              # shape (timing is the same; losses are meaningless)
    python benchmarks/gpu.py --epochs 1 --device cpu          # a quick check of the script itself
"""

import argparse
import json
import time

import torch

from bnbench.engines.choose import resolve_device
from bnbench.engines.eager import Trainer
from bnbench.engines.graph import GraphTrainer
from bnbench.engines.stacked import StackedTrainer
from bnbench.experiment.data import Dataset, Split, load_dataset
from bnbench.experiment.loading import load_config
from bnbench.experiment.trials import expand


def data_for(root, device) -> Dataset:
    if root:
        config, _ = load_config("mlp", (f"dataset.root={root}", "dataset.name=imagefolder"))
        return load_dataset(config.dataset).to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (60000, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (60000,), generator=g)
    return Dataset("random", Split(x[:50000], y[:50000]), Split(x[50000:], y[50000:]), list("0123456789")).to(device)


def timed(device, fn) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def one_at_a_time(cls, trials, data, device, epochs) -> float:
    def train():
        for trial in trials:
            trainer = cls(trial, data, device)
            for _ in range(epochs):
                trainer.train_epoch()

    return timed(device, train)


def stacked(trials, data, device, epochs) -> float:
    def train():
        for group in StackedTrainer.compatible(trials):
            trainer = StackedTrainer(group, data, device)
            for _ in range(epochs):
                trainer.train_epoch()

    return timed(device, train)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", help="CIFAR-10 image folder; default: random data of the same shape")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}, {args.epochs} epoch(s)", flush=True)
    data = data_for(args.root, device)
    steps = args.epochs * len(data.train.y) // 10
    overrides = (f"training.epochs={args.epochs}", "training.log_every=0")
    tutorial = expand(load_config("mlp", overrides)[0])
    many = expand(load_config("mlp", overrides, seeds=list(range(10)))[0])
    engines = {
        "eager": lambda t: one_at_a_time(Trainer, t, data, device, args.epochs),
        "stacked": lambda t: stacked(t, data, device, args.epochs),
    }
    if device.type == "cuda":
        engines["graph"] = lambda t: one_at_a_time(GraphTrainer, t, data, device, args.epochs)
    results = {}
    for engine, run in engines.items():
        seconds = run(tutorial)
        results[f"tutorial/{engine}"] = seconds
        print(
            f"tutorial (2 trials)   {engine:<8} {seconds:8.1f} s  {1e3 * seconds / (2 * steps):.3f} ms/step/trial",
            flush=True,
        )
    best = "graph" if "graph" in engines else "eager"
    one_trial = results[f"tutorial/{best}"] / 2
    seconds = stacked(many, data, device, args.epochs)
    results["seeds/stacked"] = seconds
    print(
        f"20 trials             stacked  {seconds:8.1f} s  = {seconds / one_trial:.2f}x one trial on {best} "
        f"({one_trial:.1f} s, from the tutorial row)"
    )
    fastest = min(v for k, v in results.items() if k.startswith("tutorial"))
    print(f"tutorial: eager / best = {results['tutorial/eager'] / fastest:.1f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "epochs": args.epochs, "seconds": results}, f, indent=2)


if __name__ == "__main__":
    main()
