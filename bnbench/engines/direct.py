"""The MLP's forward and backward pass without autograd, for the eager engine on the CPU.

For the tutorial's tiny MLP, autograd's bookkeeping (graph nodes, AccumulateGrad, module calls) is a large part
of a training step on the CPU (benchmarks/cpu.py). For a Sequential of
Flatten, Linear, BatchNorm1d and ReLU, `DirectGradients` walks the layers by hand and calls the ATen kernels that
autograd calls for them, with the same arguments: addmm / mm / sum for Linear, native_batch_norm and its backward
for BN, relu / threshold_backward, and _log_softmax / nll_loss_forward and their backward kernels for the
cross-entropy. Gradients, BN running statistics and losses are therefore bitwise those of `loss.backward()`
(tests/engines/test_direct.py checks it). Other models, and other devices (cuDNN has its own BN kernels), use autograd.
"""

from typing import Optional

import torch
from torch import nn

aten = torch.ops.aten
MEAN = 1  # at::Reduction::Mean, F.cross_entropy's default reduction
IGNORE_INDEX = -100  # F.cross_entropy's default


def supported(model: nn.Module, device: torch.device) -> bool:
    """A Sequential that starts with Flatten (or Linear) and then holds only Linear (with bias), ReLU and
    BatchNorm1d as bnbench builds it (affine, running statistics, a fixed momentum), on the CPU."""
    layers = list(model) if isinstance(model, nn.Sequential) else []
    if device.type != "cpu" or not layers:
        return False
    if type(layers[0]) is nn.Flatten:
        if (layers[0].start_dim, layers[0].end_dim) != (1, -1):
            return False
        layers = layers[1:]
    return bool(layers) and type(layers[0]) is nn.Linear and all(_plain(m) for m in layers)


def _plain(m: nn.Module) -> bool:
    if type(m) is nn.Linear:
        return m.bias is not None
    if type(m) is nn.BatchNorm1d:
        return m.affine and m.track_running_stats and m.momentum is not None
    return type(m) is nn.ReLU


class DirectGradients:
    """`(x, y) -> (loss, logits)` that leaves every parameter's `.grad` set, as
    `loss = F.cross_entropy(model(x), y); loss.backward()` would in training mode (with the gradients set to
    None before): BN normalises with the batch's statistics and updates its running ones."""

    def __init__(self, model: nn.Sequential):
        layers = list(model)
        self.flatten = type(layers[0]) is nn.Flatten
        self.layers = layers[1:] if self.flatten else layers

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            h = x.flatten(1) if self.flatten else x
            saved = []  # what each layer's backward needs
            for layer in self.layers:
                h, ctx = _forward(layer, h)
                saved.append(ctx)
            logp = aten._log_softmax(h, 1, False)
            loss, total_weight = aten.nll_loss_forward(logp, y, None, MEAN, IGNORE_INDEX)
            g = aten.nll_loss_backward(torch.ones_like(loss), logp, y, None, MEAN, IGNORE_INDEX, total_weight)
            g = aten._log_softmax_backward_data(g, logp, 1, logp.dtype)
            for i in range(len(self.layers) - 1, -1, -1):  # the first layer is a Linear on the inputs
                g = _backward(self.layers[i], g, saved[i], need_input_grad=i > 0)
        return loss, h


def _forward(layer: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, object]:
    kind = type(layer)
    if kind is nn.Linear:  # F.linear on a 2-d input with a bias is addmm(bias, input, weight.t())
        return torch.addmm(layer.bias, h, layer.weight.t()), h
    if kind is nn.ReLU:  # ReluBackward0 keeps the result
        h = torch.relu(h)
        return h, h
    layer.num_batches_tracked.add_(1)  # BatchNorm1d.forward in training mode, with a fixed momentum
    out, mean, invstd = aten.native_batch_norm(
        h, layer.weight, layer.bias, layer.running_mean, layer.running_var, True, layer.momentum, layer.eps
    )
    return out, (h, mean, invstd)


def _backward(layer: nn.Module, g: torch.Tensor, ctx, need_input_grad: bool) -> Optional[torch.Tensor]:
    kind = type(layer)
    if kind is nn.Linear:  # AddmmBackward0: mm_mat2_backward on weight.t(), then the bias's sum_to
        layer.weight.grad = g.t().mm(ctx)
        layer.bias.grad = g.sum(0)
        return g.mm(layer.weight) if need_input_grad else None
    if kind is nn.ReLU:
        return aten.threshold_backward(g, ctx, 0)
    h, mean, invstd = ctx
    g, layer.weight.grad, layer.bias.grad = aten.native_batch_norm_backward(
        g, h, layer.weight, layer.running_mean, layer.running_var, mean, invstd, True, layer.eps, [True, True, True]
    )
    return g
