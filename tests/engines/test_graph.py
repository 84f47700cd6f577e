"""The CUDA-graph engine gives the eager engine's numbers (needs a GPU; skipped elsewhere)."""

import copy
import json

import pandas as pd
import pytest
import torch
from support.configs import tiny_config

from bnbench.engines import choose
from bnbench.engines.choose import choose as choose_engine
from bnbench.engines.eager import Trainer
from bnbench.engines.graph import GraphTrainer
from bnbench.errors import BnbenchError
from bnbench.experiment.config import Config
from bnbench.experiment.data import load_dataset
from bnbench.experiment.trials import expand

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="the graph engine needs a CUDA device")
VARIANTS = [
    {"name": "plain", "norm": "none"},
    {"name": "before", "norm": "batchnorm"},
    {"name": "after", "norm": "batchnorm", "placement": "after_activation"},
]


def trials(kind="mlp", log_every=20, eval_every=None):
    model = {"kind": kind, "hidden": [32, 16], "channels": [8, 16]}
    config = Config(
        name="g",
        seeds=[0, 1],
        dataset={"name": "digits"},
        model=model,
        variants=VARIANTS,
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 16, "log_every": log_every, "eval_every": eval_every},
    )
    return expand(config)


@cuda
@pytest.mark.parametrize("kind,eval_every", [("mlp", None), ("cnn", None), ("mlp", 7)])
def test_graph_engine_matches_eager(kind, eval_every):
    """eval_every=7 cuts the 50-step graphs at every evaluation: graphs of other lengths, same numbers."""
    device = torch.device("cuda")
    data = load_dataset(Config(name="d", dataset={"name": "digits"}).dataset).to(device)
    for trial in trials(kind, eval_every=eval_every):
        eager, graph = Trainer(trial, data, device), GraphTrainer(trial, data, device)
        for _ in range(2):
            a, b = eager.train_epoch(), graph.train_epoch()
            torch.testing.assert_close(torch.from_numpy(b.losses), torch.from_numpy(a.losses), rtol=1e-5, atol=1e-6)
            assert b.test_loss == pytest.approx(a.test_loss, rel=1e-5)
            assert [e[0] for e in b.evals] == [e[0] for e in a.evals]
            assert [e[1] for e in b.evals] == pytest.approx([e[1] for e in a.evals], rel=1e-5)
        for key, value in eager.model.state_dict().items():
            torch.testing.assert_close(graph.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)


@cuda
def test_graph_checkpoint_resumes_in_place():
    device = torch.device("cuda")
    data = load_dataset(Config(name="d", dataset={"name": "digits"}).dataset).to(device)
    trial = trials()[1]
    one = GraphTrainer(trial, data, device)
    one.train_epoch()
    state = copy.deepcopy(one.state_dict())
    second = one.train_epoch()
    other = GraphTrainer(trial, data, device)
    other.train_epoch()  # captures its graphs, then gets the checkpoint copied in place
    other.load_state_dict(state)
    torch.testing.assert_close(torch.from_numpy(other.train_epoch().losses), torch.from_numpy(second.losses))


def test_graph_engine_refuses_the_cpu_and_sgd():
    config = trials()[0].config
    with pytest.raises(BnbenchError, match="training.engine: graph needs a CUDA device, not 'cpu'"):
        choose_engine(config.with_values({"training.engine": "graph"}), torch.device("cpu"))
    with pytest.raises(BnbenchError, match="graph supports adam and adamw"):
        choose_engine(config.with_values({"training.engine": "graph", "optimizer.name": "sgd"}), torch.device("cuda"))
    assert choose_engine(config, torch.device("cpu")) == "eager"
    assert choose_engine(config, torch.device("cuda")) == "graph"


class CaptureFails(Trainer):
    """The eager Trainer, failing in epoch `fail_at` as a CUDA graph capture does, after steps that moved its
    weights: a fallback must train that epoch again from the last finished one, not from where this stopped."""

    fail_at = 1

    def train(self, first, last):
        if self.epoch + 1 != self.fail_at:
            return super().train(first, last)
        size = self.trial.config.training.batch_size
        for i in range(3):
            idx = self.epoch_order[i * size : (i + 1) * size]
            self._step(idx, self.data.train.y.index_select(0, idx))
        raise RuntimeError(
            "CUDA error: operation not permitted when stream is capturing\n"
            "CUDA kernel errors might be asynchronously reported at some other API call"
        )


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_failed_capture_falls_back_to_eager(tmp_path, monkeypatch, run_config, fail_at):
    """No GPU has run the graph engine yet, so a GPU user must never be stuck with it: where capture or replay
    fails, eager trains the trial on from its last finished epoch, to an eager run's numbers, with one note and
    meta.json saying so. (On the CPU: the graph engine forced past its device check, its trainer failing.)"""
    config = tiny_config(
        "fallback",
        [0],
        optimizer={"name": "adam", "lr": 3e-3},
        training={"epochs": 2, "batch_size": 32, "log_every": 0, "eval_every": 20},
        model={"hidden": [16]},
    )
    eager, _ = run_config(config, tmp_path / "eager")
    build = choose.build
    monkeypatch.setattr(CaptureFails, "fail_at", fail_at)
    monkeypatch.setattr(choose, "requested", lambda config, device: "graph")
    monkeypatch.setattr(
        choose,
        "build",
        lambda engine, unit, data, device: (
            CaptureFails(unit[0], data, device) if engine == "graph" else build(engine, unit, data, device)
        ),
    )
    graph, output = run_config(config, tmp_path / "graph")
    for name in ("batches.csv", "evals.csv"):
        assert (graph / name).read_bytes() == (eager / name).read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_csv(graph / "epochs.csv").drop(columns="seconds"),
        pd.read_csv(eager / "epochs.csv").drop(columns="seconds"),
    )
    meta = json.loads((graph / "meta.json").read_text())
    why = (
        f"graph -> eager at epoch {fail_at} (RuntimeError: CUDA error: operation not permitted when stream is "
        f"capturing)"
    )
    assert meta["engine"] == "graph" and meta["engine_fallback"] == {"batchnorm-s0": why, "plain-s0": why}
    notes = [line for line in output.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: batchnorm-s0: {why}; eager trains it on from its last finished epoch (meta.json's "
        f"engine_fallback lists every trial this happens to)"
    ]
