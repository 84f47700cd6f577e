"""What `--backend ray` costs per trial on top of training, measured with the real backend and a real Ray cluster.

  connect    ray.init to the cluster at --address (or, without one, starting a Ray instance of its own)
  trial      one quick.yaml trial (digits, 5 epochs, one thread) through the in-process backend, then through the
             Ray backend twice (a new worker process, then the same one again): seconds to the first progress
             event and to the end; the difference is the overhead
  stream     a generator task yields 20 (timestamp, checkpoint bytes) pairs, 50 ms apart; latency = arrival at
             the driver - the task's timestamp (one machine, one clock): the median, for checkpoints the size of
             quick.yaml's MLP and of the tutorial's CIFAR-10 MLP

Run: python benchmarks/ray_overhead.py [--address HOST:PORT]   (RAY_AUTH_* as the cluster needs)
"""

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import ray
import torch

from bnbench.backends.dispatch import Job
from bnbench.backends.local import Local
from bnbench.backends.ray import Ray
from bnbench.engines.eager import Trainer
from bnbench.experiment.data import Dataset, Split, load_dataset
from bnbench.experiment.loading import load_config
from bnbench.experiment.trials import expand
from bnbench.rundir import store


class Clock:
    """A Receiver that notes when the first progress event and the last epoch arrive."""

    def __init__(self):
        self.start, self.first, self.last = time.perf_counter(), None, None

    def progress(self, p):
        self.first = self.first or time.perf_counter() - self.start

    def epoch_done(self, trial, result, state):
        self.last = time.perf_counter() - self.start


@ray.remote(num_cpus=1, max_retries=0)
def stream(payload: bytes, n: int):
    for _ in range(n):
        time.sleep(0.05)
        yield time.time(), payload


def checkpoint_bytes(config_name: str, shape: tuple[int, int, int]) -> bytes:
    """A checkpoint of the config's first trial after one Adam step, for images of `shape` (no data loaded)."""
    config, _ = load_config(config_name, (), [0], "cpu")
    images = Split(torch.zeros(1, *shape, dtype=torch.uint8), torch.zeros(1, dtype=torch.long))
    trainer = Trainer(
        expand(config)[0], Dataset("shapes", images, images, [str(c) for c in range(10)]), torch.device("cpu")
    )
    for p in trainer.params:
        p.grad = torch.zeros_like(p)
    trainer.optimizer.step()  # Adam's moments exist, as in every saved checkpoint
    return store.serialize(trainer.state_dict())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", default=None)
    args = parser.parse_args()

    started = time.perf_counter()
    ray.init(address=args.address or "local", logging_level=logging.WARNING)
    print(f"connect   {time.perf_counter() - started:6.2f} s ({args.address or 'a Ray instance of its own'})")

    config, _ = load_config("quick", (), [0], "cpu")
    trials = expand(config)[:1]
    with tempfile.TemporaryDirectory() as tmp:
        job = Job(Path(tmp), config, load_dataset(config.dataset), torch.device("cpu"), "eager")
        ray_backend = Ray(args.address, None, print)
        for name, backend in (("local", Local()), ("ray", ray_backend), ("again", ray_backend)):
            clock = Clock()
            backend.train(job, [trials], clock)
            print(f"trial     {name:5s} first progress {clock.first:6.2f} s, 5 epochs done {clock.last:6.2f} s")

    for name, shape in (("quick", (1, 8, 8)), ("mlp", (3, 32, 32))):
        payload = checkpoint_bytes(name, shape)
        ray.get(next(stream.remote(b"", 1)))  # a worker started and warm
        latencies = [time.time() - stamp for stamp, _ in map(ray.get, stream.remote(payload, 20))]
        print(
            f"stream    {name:5s} checkpoint {len(payload) / 1e6:5.2f} MB: median "
            f"{1e3 * statistics.median(latencies):6.1f} ms, max {1e3 * max(latencies):6.1f} ms"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
