"""The networks: the built-in MLP and CNN, torchvision's classification models, and the user's own factory, each
built once per variant with that variant's normalisation layer (`norms`: which layer, where in the built-ins).

torchvision (`kind: torchvision`): the ResNets take the norm through torchvision's own `norm_layer` argument
(nn.Identity for none); a VGG is vggN_bn with BatchNorm and vggN without (built as vggN_bn with nn.Identity
in place of each BatchNorm2d: vggN's computation, vggN_bn's layer names). `width` scales every layer (64 is
torchvision's model, layer for layer); the first conv takes the data's channels; `stem: cifar` replaces a ResNet's
7x7/2 conv and max-pool by a 3x3/1 conv (the usual CIFAR ResNet). Factories (`kind: factory`) are called as
`make_net(num_classes=..., in_shape=(C, H, W), norm_layer=..., **kwargs)`, torchvision's convention.

Initial weights (the same-seed guarantee, see `init_weights`): the built-ins draw each Linear/Conv2d from a
generator seeded by (seed, its rank among those layers), the scheme every earlier result was made with; for
torchvision and factory models every module with its own parameters and a `reset_parameters` (Linear, Conv,
Embedding, ...) is reset, PyTorch's default init for its type, under the global RNG seeded by (seed, its
qualified name): swapping the norm keeps the other modules' names, so shared layers start identical. Norm layers
start at their defaults (scale 1, shift 0).
"""

import copy
import hashlib
import importlib
import itertools
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bnbench.errors import BnbenchError
from bnbench.experiment.fields import brief
from bnbench.experiment.loading import FACTORY_FOLDERS
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.experiment.seeding import derive_seed, generator, kept_globals, seed_globals
from bnbench.nets.norms import lone_groups_refused, norm_layer_for, norm_layers

WEIGHTED = (nn.Linear, nn.Conv2d)
MAX_PARAMETERS = 500_000_000  # 2 GB of float32 weights, 6 GB more with Adam's state and the gradients


class BnbenchWarning(UserWarning):
    """A config that runs but cannot answer its question (e.g. a factory that ignores its norm layer)."""


def build_model(
    cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int, seed: int
) -> nn.Module:
    if cfg.kind == "torchvision":
        return _seeded(lambda: _torchvision(cfg, variant, input_shape, num_classes), seed)
    if cfg.kind == "timm":
        return _seeded(lambda: _timm(cfg, variant, input_shape, num_classes), seed)
    if cfg.kind == "factory":
        return _seeded(lambda: _factory(cfg, variant, input_shape, num_classes), seed)
    return _builtin(cfg, variant, input_shape, num_classes, seed)


# ---- the built-in mlp and cnn ------------------------------------------------------------------------------------


def _builtin(
    cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int, seed: int
) -> nn.Sequential:
    convs, linears = _layer_sizes(cfg, input_shape, num_classes)
    _refuse_huge(cfg, variant, input_shape, convs, linears)
    layers: list[nn.Module] = []
    for channels, out in convs:
        layers += [
            nn.Conv2d(channels, out, 3, padding=1),
            *_activation(variant, norm_layers(variant, out, conv=True)),
            nn.MaxPool2d(2),
        ]
    layers.append(nn.Flatten())
    for features, out in linears[:-1]:
        layers += [nn.Linear(features, out), *_activation(variant, norm_layers(variant, out, conv=False))]
    layers.append(nn.Linear(*linears[-1]))
    model = nn.Sequential(*layers)
    init_weights(model, seed)
    return model


def _layer_sizes(
    cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(in, out) channels of each Conv2d and features of each Linear, worked out before anything is allocated."""
    channels, height, width = input_shape
    convs = []
    for out in cfg.channels if cfg.kind == "cnn" else []:
        convs.append((channels, out))
        channels, height, width = out, height // 2, width // 2
    if height == 0 or width == 0:
        raise BnbenchError(
            f"model.channels: {len(cfg.channels)} pooling stages shrink the "
            f"{input_shape[1]}x{input_shape[2]} input to nothing; use fewer entries"
        )
    sizes = [channels * height * width, *cfg.hidden, num_classes]
    return convs, list(itertools.pairwise(sizes))


def _refuse_huge(
    cfg: ModelConfig,
    variant: VariantConfig,
    input_shape: tuple[int, int, int],
    convs: list[tuple[int, int]],
    linears: list[tuple[int, int]],
) -> None:
    """A model too big for memory fails in the allocator with a traceback (or swaps for an hour): count first."""
    weights = sum(9 * c * out + out for c, out in convs) + sum(f * out + out for f, out in linears)
    normalised = sum(out for _, out in convs + linears[:-1]) if variant.norm != "none" else 0
    count = weights + 2 * normalised
    if count > MAX_PARAMETERS:
        layers = f"hidden {brief(cfg.hidden)}" + (f", channels {brief(cfg.channels)}" if convs else "")
        fields = "model.hidden or model.channels" if convs else "model.hidden"
        raise BnbenchError(
            f"model: {layers} on {'x'.join(map(str, input_shape))} inputs makes {count:,} parameters, "
            f"more than the {MAX_PARAMETERS:,} bnbench builds; use narrower {fields}"
        )


def _activation(variant: VariantConfig, norm: list[nn.Module]) -> list[nn.Module]:
    if variant.placement == "before_activation":
        return [*norm, nn.ReLU()]
    return [nn.ReLU(), *norm]


@torch.no_grad()
def init_weights(model: nn.Module, seed: int) -> None:
    """The built-ins' init: PyTorch's default distribution (U(±1/sqrt(fan_in)) for weight and bias), drawn from a
    generator seeded by (seed, the layer's rank among the Linear/Conv2d layers). The rank, not the Sequential
    index, is the key that is the same in every variant (a norm layer shifts the indices)."""
    for i, layer in enumerate(weighted_layers(model)):
        g = generator(seed, "init", i)
        bound = 1 / math.sqrt(layer.weight[0].numel())
        layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=g))
        if layer.bias is not None:
            layer.bias.copy_(torch.empty_like(layer.bias).uniform_(-bound, bound, generator=g))


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, WEIGHTED)]


# ---- any module tree: seeded by qualified name -------------------------------------------------------------------


def _seeded(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model with the global RNGs seeded by (seed, "build") (so parameters that no `reset_parameters`
    covers, or that a factory draws with numpy or `random`, are still the same for one seed), then reset its
    layers by name; the caller's RNG states are kept (models are built on the CPU)."""
    with kept_globals(torch.device("cpu")):
        seed_globals(seed, "build")
        model = build()
        reset_by_name(model, seed)
    return model


@torch.no_grad()
def reset_by_name(model: nn.Module, seed: int) -> None:
    """Each module with its own parameters and a `reset_parameters` is reset (PyTorch's default init for its type)
    under the global RNG seeded by (seed, "init", its qualified name), so a layer's initial weights depend on its
    name and nothing else: not on the layers before it, nor on the norm a variant swapped in beside it."""
    for name, module in model.named_modules():
        if hasattr(module, "reset_parameters") and next(module.parameters(recurse=False), None) is not None:
            torch.manual_seed(derive_seed(seed, "init", name_key(name)))
            module.reset_parameters()


def name_key(name: str) -> int:
    """A module's qualified name as an integer word for `derive_seed` (a 128-bit digest: no two names collide)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=16).digest(), "little")


# ---- torchvision -------------------------------------------------------------------------------------------------


def _torchvision(
    cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    from bnbench.nets import zoo  # torchvision.models imports torch._dynamo (slow): paid only by runs of its models

    return _from_zoo(zoo.create, cfg, variant, input_shape, num_classes)


def _timm(cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    from bnbench.nets import timm_models  # an optional extra, and slow to import: paid only by runs of its models

    return _from_zoo(timm_models.create, cfg, variant, input_shape, num_classes)


def _from_zoo(
    build: Callable[..., nn.Module],
    cfg: ModelConfig,
    variant: VariantConfig,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """`build(cfg, variant, norm_layer, input_shape, num_classes)`, after a dry run on the meta device: one without
    memory, as a wide resnet152 would fill it, that also tries a forward pass on inputs of the data's shape."""
    with torch.device("meta"):
        model = build(cfg, variant, norm_layer_for(variant), input_shape, num_classes)
        count = sum(p.numel() for p in model.parameters())
        if count > MAX_PARAMETERS:
            what, fix = (f"at width {cfg.width} ", "model.width") if cfg.kind == "torchvision" else ("", "model")
            raise BnbenchError(
                f"model: {cfg.name} {what}makes {count:,} parameters, more than the "
                f"{MAX_PARAMETERS:,} bnbench builds; use a smaller {fix}"
            )
        try:
            with lone_groups_refused(model, variant):
                model(torch.zeros(2, *input_shape))
        except (ValueError, RuntimeError, AssertionError) as e:  # e.g. InstanceNorm of a 1x1 map: one value to 0
            raise BnbenchError(
                f"model: {cfg.name} cannot train on {'x'.join(map(str, input_shape))} inputs with "
                f"norm: {variant.norm} ({e}); use larger images or another norm"
            ) from None
    return build(cfg, variant, norm_layer_for(variant), input_shape, num_classes)


# ---- factories ---------------------------------------------------------------------------------------------------

USER_ERRORS = (Exception, SystemExit)  # what the user's code may raise, one line each (Ctrl-C still stops a run)


def _factory(
    cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int
) -> nn.Module:
    make = load_factory(cfg.factory)
    norm_layer = norm_layer_for(variant)
    threads = torch.get_num_threads()
    try:
        model = make(num_classes=num_classes, in_shape=input_shape, norm_layer=norm_layer, **cfg.kwargs)
    except USER_ERRORS as e:  # the user's code: one line, theirs to fix
        raise BnbenchError(
            f"model.factory: {cfg.factory}(num_classes={num_classes}, in_shape={input_shape}, "
            f"norm_layer=..., **model.kwargs) raised {_raised(e)}"
        ) from None
    finally:  # a factory's torch.set_num_threads stops here: a trial trains on one thread (dispatch.cpu_settings)
        torch.set_num_threads(threads)
    if not isinstance(model, nn.Module):
        raise BnbenchError(f"model.factory: {cfg.factory} returned a {type(model).__name__}, not a torch nn.Module")
    _check_trains(model, cfg.factory, variant, input_shape, num_classes)
    if variant.norm != "none" and norm_layer.calls == 0:
        warnings.warn(
            f"model.factory: {cfg.factory} never called norm_layer, so variant '{variant.name}' "
            f"(norm: {variant.norm}) builds the same network as norm: none; pass norm_layer on to the "
            f"layers that should use it",
            BnbenchWarning,
            stacklevel=2,
        )
    return model


def load_factory(ref: str) -> Callable[..., nn.Module]:
    """'package.module:callable', imported from the working directory, the config file's folder
    (`factories_beside`) or the environment."""
    module_name, _, attribute = ref.partition(":")
    for folder in map(str, [Path.cwd(), *FACTORY_FOLDERS]):
        if folder not in sys.path:
            sys.path.append(folder)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise BnbenchError(
            f"model.factory: cannot import '{module_name}' ({e}); put it beside the config file or in the "
            f"folder bnbench runs from, or install it"
        ) from None
    except USER_ERRORS as e:  # the user's module
        raise BnbenchError(f"model.factory: importing '{module_name}' raised {_raised(e)}") from None
    make = module
    for part in attribute.split("."):
        if not hasattr(make, part):
            raise BnbenchError(f"model.factory: module '{module_name}' ({module.__file__}) has no '{attribute}'")
        make = getattr(make, part)
    if not callable(make):
        raise BnbenchError(f"model.factory: {ref} is a {type(make).__name__}, not a callable that returns a model")
    return make


def _raised(e: BaseException) -> str:
    """'RuntimeError: out of ideas'; 'SystemExit' alone when there is no message."""
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _check_trains(
    model: nn.Module, ref: str, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int
) -> None:
    """What training needs of a factory's model, tried before a run folder exists rather than found in the first
    step: trainable parameters; floating-point logits of shape (batch, num_classes) in train and eval mode at two
    batch sizes (a model that fixes its batch, or changes shape in train mode, shows it only there); a loss whose
    backward reaches a parameter. Tried on zero images with a copy of the model under saved global RNGs, so the
    model's weights and BN statistics, and every random draw of the run, stay as they were."""
    with kept_globals(torch.device("cpu")):
        try:
            tried = copy.deepcopy(model)
        except USER_ERRORS as e:
            raise BnbenchError(
                f"model.factory: {ref}'s model cannot be copied ({_raised(e)}); bnbench tries a "
                f"training step on a copy before the run"
            ) from None
        with lone_groups_refused(tried, variant):
            logits = [
                _logits(tried, ref, training, batch, input_shape, num_classes)
                for training in (True, False)
                for batch in (2, 3)
            ]
        parameters = list(tried.parameters())
        if not any(p.requires_grad for p in parameters):
            what = f"all {len(parameters)} have requires_grad=False" if parameters else "it has none"
            raise BnbenchError(
                f"model.factory: {ref}'s model has no trainable parameters ({what}); nothing would train"
            )
        _check_backward(tried, ref, logits[0])


def _logits(
    model: nn.Module, ref: str, training: bool, batch: int, input_shape: tuple[int, int, int], num_classes: int
) -> torch.Tensor:
    """The model's output for `batch` zero images in train or eval mode, checked to be logits."""
    mode = "train" if training else "eval"
    model.train(training)
    try:
        out = model(torch.zeros(batch, *input_shape))
    except BnbenchError:
        raise
    except USER_ERRORS as e:  # the user's forward
        raise BnbenchError(
            f"model.factory: {ref}'s model fails in {mode} mode on a batch of shape "
            f"{(batch, *input_shape)} ({_raised(e)})"
        ) from None
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != (batch, num_classes):
        raise BnbenchError(
            f"model.factory: {ref}'s model returns {shape} for a batch of {batch}, not (batch, "
            f"num_classes) = ({batch}, {num_classes}), in {mode} mode; end it with a layer of "
            f"{num_classes} outputs (the logits)"
        )
    if not out.is_floating_point():
        raise BnbenchError(
            f"model.factory: {ref}'s model returns logits of type {out.dtype}, in {mode} mode; a "
            f"loss needs floating-point ones (return the last layer's output, not its argmax)"
        )
    return out


def _check_backward(model: nn.Module, ref: str, logits: torch.Tensor) -> None:
    """The cross-entropy of train-mode logits must give some parameter a gradient, or the optimizer moves nothing."""
    try:
        if logits.requires_grad:
            F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long)).backward()
    except USER_ERRORS as e:  # the user's backward (a custom autograd function)
        raise BnbenchError(f"model.factory: {ref}'s model: the loss's backward pass raised {_raised(e)}") from None
    if all(p.grad is None for p in model.parameters()):
        raise BnbenchError(
            f"model.factory: {ref}'s model: the loss's gradient reaches no parameter (logits computed "
            f"under no_grad, detached, or from frozen layers only?); nothing would train"
        )
