"""The networks: the tutorial's MLP and a small CNN, each with or without BatchNorm, BN before or after ReLU.

BatchNorm1d follows every hidden Linear, BatchNorm2d every Conv2d (BN2d normalises each channel over batch and
space; BN1d each feature over the batch). Weights are initialised per layer from the trial's seed (see
`seeding`), with PyTorch's default distribution, so all variants of one seed share their Linear/Conv weights.
"""
import itertools
import math

import torch
from torch import nn

from .config import ModelConfig, VariantConfig, brief
from .errors import BnbenchError
from .seeding import generator

WEIGHTED = (nn.Linear, nn.Conv2d)
MAX_PARAMETERS = 500_000_000  # 2 GB of float32 weights, 6 GB more with Adam's state and the gradients


def build_model(cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int,
                seed: int) -> nn.Sequential:
    convs, linears = _layer_sizes(cfg, input_shape, num_classes)
    _refuse_huge(cfg, variant, input_shape, convs, linears)
    layers: list[nn.Module] = []
    for channels, out in convs:
        layers += [nn.Conv2d(channels, out, 3, padding=1), *_activation(variant, out, nn.BatchNorm2d), nn.MaxPool2d(2)]
    layers.append(nn.Flatten())
    for features, out in linears[:-1]:
        layers += [nn.Linear(features, out), *_activation(variant, out, nn.BatchNorm1d)]
    layers.append(nn.Linear(*linears[-1]))
    model = nn.Sequential(*layers)
    init_weights(model, seed)
    return model


def _layer_sizes(cfg: ModelConfig, input_shape: tuple[int, int, int],
                 num_classes: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(in, out) channels of each Conv2d and features of each Linear, worked out before anything is allocated."""
    channels, height, width = input_shape
    convs = []
    for out in cfg.channels if cfg.kind == "cnn" else []:
        convs.append((channels, out))
        channels, height, width = out, height // 2, width // 2
    if height == 0 or width == 0:
        raise BnbenchError(f"model.channels: {len(cfg.channels)} pooling stages shrink the "
                           f"{input_shape[1]}x{input_shape[2]} input to nothing; use fewer entries")
    sizes = [channels * height * width, *cfg.hidden, num_classes]
    return convs, list(itertools.pairwise(sizes))


def _refuse_huge(cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int],
                 convs: list[tuple[int, int]], linears: list[tuple[int, int]]) -> None:
    """A model too big for memory fails in the allocator with a traceback (or swaps for an hour): count first."""
    weights = sum(9 * c * out + out for c, out in convs) + sum(f * out + out for f, out in linears)
    normalised = sum(out for _, out in convs + linears[:-1]) if variant.norm == "batchnorm" else 0
    count = weights + 2 * normalised
    if count > MAX_PARAMETERS:
        layers = f"hidden {brief(cfg.hidden)}" + (f", channels {brief(cfg.channels)}" if convs else "")
        fields = "model.hidden or model.channels" if convs else "model.hidden"
        raise BnbenchError(f"model: {layers} on {'x'.join(map(str, input_shape))} inputs makes {count:,} parameters, "
                           f"more than the {MAX_PARAMETERS:,} bnbench builds; use narrower {fields}")


def _activation(variant: VariantConfig, width: int, norm: type) -> list[nn.Module]:
    if variant.norm == "none":
        return [nn.ReLU()]
    if variant.placement == "before_activation":
        return [norm(width), nn.ReLU()]
    return [nn.ReLU(), norm(width)]


@torch.no_grad()
def init_weights(model: nn.Module, seed: int) -> None:
    """PyTorch's default init (U(±1/sqrt(fan_in)) for weight and bias), drawn from a generator per layer."""
    for i, layer in enumerate(m for m in model.modules() if isinstance(m, WEIGHTED)):
        g = generator(seed, "init", i)
        bound = 1 / math.sqrt(layer.weight[0].numel())
        layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=g))
        if layer.bias is not None:
            layer.bias.copy_(torch.empty_like(layer.bias).uniform_(-bound, bound, generator=g))


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]
