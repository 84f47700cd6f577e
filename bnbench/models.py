"""The networks: the tutorial's MLP and a small CNN, each with or without BatchNorm, BN before or after ReLU.

BatchNorm1d follows every hidden Linear, BatchNorm2d every Conv2d (BN2d normalises each channel over batch and
space; BN1d each feature over the batch). Weights are initialised per layer from the trial's seed (see
`seeding`), with PyTorch's default distribution, so all variants of one seed share their Linear/Conv weights.
"""
import math

import torch
from torch import nn

from .config import ModelConfig, VariantConfig
from .errors import BnbenchError
from .seeding import generator

WEIGHTED = (nn.Linear, nn.Conv2d)


def build_model(cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int,
                seed: int) -> nn.Sequential:
    channels, height, width = input_shape
    layers: list[nn.Module] = []
    if cfg.kind == "cnn":
        for out in cfg.channels:
            layers += [nn.Conv2d(channels, out, 3, padding=1), *_activation(variant, out, nn.BatchNorm2d),
                       nn.MaxPool2d(2)]
            channels, height, width = out, height // 2, width // 2
        if height == 0 or width == 0:
            raise BnbenchError(f"model.channels: {len(cfg.channels)} pooling stages shrink the "
                               f"{input_shape[1]}x{input_shape[2]} input to nothing; use fewer entries")
    layers.append(nn.Flatten())
    features = channels * height * width
    for out in cfg.hidden:
        layers += [nn.Linear(features, out), *_activation(variant, out, nn.BatchNorm1d)]
        features = out
    layers.append(nn.Linear(features, num_classes))
    model = nn.Sequential(*layers)
    init_weights(model, seed)
    return model


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
