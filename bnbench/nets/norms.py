"""The variants' norm layers: the one a variant puts after a layer of the built-in mlp and cnn, the `norm_layer`
that torchvision models, timm models and factories get, and the check that no GroupNorm normalises lone values.

In the built-ins a norm layer follows every hidden Linear and every Conv2d, before or after the ReLU (`placement`):

    norm          after a Conv2d ([N, C, H, W])                 after a hidden Linear ([N, F])
    batchnorm     BatchNorm2d(C): per channel, over batch+space  BatchNorm1d(F): per feature, over the batch
    layernorm     GroupNorm(1, C): per example, over C, H, W     LayerNorm(F): per example, over F
    groupnorm     GroupNorm(g, C)                               GroupNorm(g, F)
    instancenorm  InstanceNorm2d(C, affine=True)                none (a feature has no positions; mlp: refused)

g is the variant's `groups` (default 32), clipped to the largest divisor of the width that is not above it.
LayerNorm of conv features is GroupNorm(1, C), the GroupNorm paper's LN: statistics over (C, H, W) per example,
a scale and shift per channel (nn.LayerNorm([C, H, W]) would learn one per position and fix the input size).
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from torch import nn

from bnbench.errors import BnbenchError
from bnbench.experiment.model_variants import GROUPS, VariantConfig


def norm_layers(variant: VariantConfig, width: int, conv: bool, **options) -> list[nn.Module]:
    """The variant's norm layer for `width` conv channels or dense features (see the module's table); `options`
    (eps, device, dtype, ...) go to its constructor."""
    norm = variant.norm
    if norm == "none" or (norm == "instancenorm" and not conv):
        return []
    if norm == "batchnorm":
        return [nn.BatchNorm2d(width, **options) if conv else nn.BatchNorm1d(width, **options)]
    if norm == "layernorm":
        return [nn.GroupNorm(1, width, **options) if conv else nn.LayerNorm(width, **options)]
    if norm == "groupnorm":
        return [nn.GroupNorm(groups(variant, width), width, **options)]
    return [nn.InstanceNorm2d(width, **{"affine": True} | options)]


def groups(variant: VariantConfig, width: int) -> int:
    """The variant's GroupNorm groups (default 32) clipped to the largest divisor of `width` not above them."""
    wanted = min(variant.groups or GROUPS, width)
    return next(g for g in range(wanted, 0, -1) if width % g == 0)


def norm_layer_for(variant: VariantConfig) -> Callable[..., nn.Module]:
    """The variant's norm as the `norm_layer(num_channels, dims=2, **kwargs)` that factories and zoos get: a plain
    function, because model zoos accept only a class or a function there (timm asserts it). dims=2 gives the norm
    of [N, C, H, W] maps (torchvision's convention), dims=1 that of [N, C] dense features (the module's table);
    kwargs go to the norm's constructor (timm passes device and dtype). Its `calls` attribute counts the calls, so
    that a model that never calls it (and so equals the plain one) is noticed."""

    def norm_layer(num_channels: int, dims: int = 2, **kwargs) -> nn.Module:
        norm_layer.calls += 1
        if dims not in (1, 2):
            raise ValueError(f"norm_layer({num_channels}, dims={dims}): dims is 2 for [N, C, H, W] maps, 1 for [N, C]")
        if dims == 1 and variant.norm == "instancenorm":
            raise ValueError(
                f"norm_layer({num_channels}, dims=1): norm: instancenorm normalises over positions, and dense "
                f"features have none; use layernorm or groupnorm in variant '{variant.name}'"
            )
        norm = norm_layers(variant, num_channels, conv=dims == 2, **kwargs)
        return norm[0] if norm else nn.Identity()

    norm_layer.calls = 0
    return norm_layer


@contextmanager
def lone_groups_refused(model: nn.Module, variant: VariantConfig) -> Iterator[None]:
    """While the forward passes inside run, a GroupNorm that gets one value per group (a dense feature or a 1x1
    map in a group of its own) raises: it normalises every value to 0, so the layer passes on only its shift and
    the variant trains a crippled network unnoticed. Dense widths of the built-ins are checked with the config."""
    handles = [
        module.register_forward_pre_hook(partial(_refuse_lone_group, name, variant))
        for name, module in model.named_modules()
        if isinstance(module, nn.GroupNorm)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _refuse_lone_group(name: str, variant: VariantConfig, module: nn.GroupNorm, args: tuple) -> None:
    features = tuple(args[0].shape[1:]) if args else ()  # () when called with input=...: not checked
    if features and math.prod(features) == module.num_groups:
        channels = module.num_channels
        raise BnbenchError(
            f"model: layer '{name}', GroupNorm({module.num_groups}, {channels}), gets one value per "
            f"group from features of shape {features} (variant '{variant.name}'), and normalises each "
            f"to 0; use fewer groups (e.g. groups: {max(1, channels // 8)}) or layernorm"
        )
