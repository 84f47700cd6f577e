"""The CUDA-graph engine (`training.engine: graph`): training steps captured once, then replayed.

The tutorial's model is tiny and its batch is 10 images, so on a GPU an eager step is a few dozen tiny kernel
launches and the GPU waits on Python (benchmarks/gpu.py). Here up to REPLAY steps (the
batch gather from the device-resident data, forward, backward, the capturable Adam update, the loss written into
a device buffer) are captured into one CUDA graph and replayed; a step reads its batch position from a device
counter, so nothing on the host changes between replays. Evaluation, and a last batch of another size, stay eager.
The arithmetic is the eager engine's (tests/engines/test_graph.py compares them where a GPU is present).
"""

import torch

from bnbench.engines import schedule
from bnbench.engines.eager import Trainer
from bnbench.engines.epoch import tick
from bnbench.engines.events import batches_per_epoch
from bnbench.experiment.data import Dataset
from bnbench.experiment.seeding import kept_globals
from bnbench.experiment.trials import Trial

REPLAY = 50  # steps per graph: enough to hide launch latency, few enough for progress and divergence checks
WARMUP = 3  # eager steps before capture (CUDA libraries initialise lazily; capture must not see that)


class GraphTrainer(Trainer):
    capturable = True

    def __init__(self, trial: Trial, data: Dataset, device: torch.device):
        if device.type != "cuda" or trial.config.optimizer.name == "sgd" or schedule.scheduled(trial.config.optimizer):
            raise ValueError(
                "GraphTrainer: needs a CUDA device, adam or adamw, and a constant lr (engines.choose checks)"
            )
        super().__init__(trial, data, device)
        size = trial.config.training.batch_size
        n = len(data.train.y)
        self.order = torch.zeros(n, dtype=torch.long, device=device)
        self.cursor = torch.zeros((), dtype=torch.long, device=device)  # batch position within the epoch
        self.losses = torch.zeros(batches_per_epoch(n, size), device=device)
        self.offsets = torch.arange(size, device=device)
        self.stream = torch.cuda.Stream(device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}

    def load_state_dict(self, state: dict) -> None:
        """Copy into the tensors the graphs were captured with (load_state_dict would replace the optimizer's)."""
        if not self.graphs:
            return super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        saved = state["optimizer"]["state"]
        for i, p in enumerate(self.params):
            for key, value in self.optimizer.state[p].items():
                value.copy_(saved[i][key])
        self.epoch, self.step = state["epoch"], state["step"]

    def begin(self, epoch: int) -> None:
        super().begin(epoch)
        self.order.copy_(self.epoch_order)  # into the tensors the graphs read
        self.cursor.zero_()

    def train(self, first: int, last: int) -> torch.Tensor:
        """Replays of up to REPLAY steps (as many as fit before `last`; at the epoch's end single steps, so that
        few graph lengths are captured); a last batch of another size is trained eagerly."""
        size = self.trial.config.training.batch_size
        full = len(self.epoch_order) // size  # batches of the full size
        replay = min(REPLAY, tick(self.trial.config.training))  # divides a tick: reads land on replay boundaries
        done, end = first, min(last, full)
        while done < end:
            steps = min(replay if full - done >= replay else 1, end - done)
            self._graph(steps).replay()
            done += steps
        losses = self.losses[first:end]
        if last > full:
            idx = self.epoch_order[full * size :]
            y = self.data.train.y.index_select(0, idx)
            loss, out = self._step(idx, y)
            self.correct_count += (out.argmax(1) == y).sum()
            losses = torch.cat([losses, loss.view(1)])
        return losses.view(1, -1)

    def _static_step(self) -> None:
        """One training step whose every input lives at a fixed device address (capturable)."""
        size = self.trial.config.training.batch_size
        idx = self.order.index_select(0, self.cursor * size + self.offsets)
        x = self.data.inputs(self.data.train.x.index_select(0, idx))
        y = self.data.train.y.index_select(0, idx)
        loss, out = self.gradients(x, y)  # autograd: the direct path is CPU-only
        self.optimizer.step()
        self.losses.index_copy_(0, self.cursor.view(1), loss.view(1))
        self.correct_count += (out.argmax(1) == y).sum()
        self.cursor += 1

    def _graph(self, steps: int) -> torch.cuda.CUDAGraph:
        if steps not in self.graphs:
            if not self.graphs:
                self._warm_up()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self.stream):
                for _ in range(steps):
                    self._static_step()
            self.graphs[steps] = graph
        return self.graphs[steps]

    def _warm_up(self) -> None:
        """Run WARMUP real steps on the capture stream, then undo them: model, BN statistics, optimizer state,
        counters and the global RNGs (a VGG's dropout draws) are put back in place, so the warm-up changes no
        number."""
        model = {k: v.clone() for k, v in self.model.state_dict().items()}
        counters = [t.clone() for t in (self.cursor, self.correct_count, self.losses)]
        fresh = not self.optimizer.state
        saved = (
            {p: {k: v.clone() for k, v in self.optimizer.state[p].items()} for p in self.params} if not fresh else {}
        )
        self.stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.stream), kept_globals(self.device):
            for _ in range(WARMUP):
                self._static_step()
        torch.cuda.current_stream(self.device).wait_stream(self.stream)
        with torch.no_grad():
            for key, value in self.model.state_dict().items():
                value.copy_(model[key])
            for tensor, value in zip((self.cursor, self.correct_count, self.losses), counters):
                tensor.copy_(value)
            for p in self.params:  # a fresh Adam state is all zeros (step 0, both moments 0)
                for key, value in self.optimizer.state[p].items():
                    value.copy_(torch.zeros_like(value) if fresh else saved[p][key])
