"""timm's models by name with a variant's norm, for `model.kind: timm` (see `models`).

A module of its own because timm is an optional extra (`pip install 'bnbench[timm]'`) and slow to import: runs of
the other models never import it. The norm goes in through timm's own `norm_layer` argument; whether an
architecture takes one is found by trying: `timm.create_model` raises a TypeError naming norm_layer for one whose
constructor has no such argument, a TypeError from the norm's constructor for one that uses it as a norm plus
activation layer (EfficientNet, RegNet: `apply_act=`, `inplace=`), and a model that swallows the argument without
calling it is caught by the call count. Either way the network could not be compared across norms, so it is refused.

`model.kwargs` go to timm's code, which checks few of them: whatever it raises with them, where the model builds
and runs without them, is the kwargs' fault and is said so in one line; so is a model that returns other than
logits (`features_only: true`). Both are found in the dry run on the meta device (`models._from_zoo`), before a
run folder exists.
"""

import difflib
import warnings
from collections.abc import Callable

import torch
from torch import nn

from bnbench.errors import BnbenchError
from bnbench.experiment.fields import brief
from bnbench.experiment.model_variants import ModelConfig, VariantConfig
from bnbench.nets.norms import norm_layer_for

EXAMPLES = "e.g. resnet18, resnet10t, resnet50, densenet121"  # architectures that take a plain norm_layer
DRY_BATCH = 2  # examples in the dry run's forward pass (BatchNorm needs 2)


def load_timm():
    """The timm package, or one line naming the extra that installs it."""
    try:
        import timm
    except ImportError:
        raise BnbenchError(
            "model.kind: timm needs the timm package, an optional extra: pip install 'bnbench[timm]'"
        ) from None
    return timm


def create(
    cfg: ModelConfig,
    variant: VariantConfig,
    norm_layer: Callable[..., nn.Module],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """`timm.create_model(name, pretrained=False, num_classes=..., in_chans=C, norm_layer=..., **model.kwargs)`:
    timm's own architecture (stem included: the data's channels come in through in_chans), no weights downloaded.
    On the meta device (`models._from_zoo`'s dry run) its output is checked too, and its warnings are left to the
    real build."""
    timm = load_timm()
    if not timm.is_model(cfg.name):
        close = difflib.get_close_matches(cfg.name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise BnbenchError(f"model.name: {cfg.name} is not a timm model ({hint})")
    dry = torch.get_default_device().type == "meta"
    try:
        with warnings.catch_warnings():
            if dry:  # said by the real build, if there is one: a refusal stays one line
                warnings.simplefilter("ignore")
            model = _create(timm, cfg.name, cfg.kwargs, norm_layer, input_shape, num_classes)
            if norm_layer.calls == 0:
                raise _refused(cfg, "it accepts norm_layer but never calls it")
            if dry:
                _check_logits(model, input_shape, num_classes)
    except BnbenchError:  # bnbench's own refusals (the norm layer's: norms.norm_layer_for)
        raise
    except Exception as e:  # timm's code, run with the user's kwargs
        raise _blamed(timm, cfg, variant, input_shape, num_classes, e) from None
    return model


def _create(timm, name: str, kwargs: dict, norm_layer, input_shape: tuple[int, int, int], num_classes: int):
    return timm.create_model(
        name, pretrained=False, num_classes=num_classes, in_chans=input_shape[0], norm_layer=norm_layer, **kwargs
    )


def _check_logits(model: nn.Module, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """What training needs of the output: logits of shape (batch, num_classes), not a list of feature maps."""
    out = model(torch.zeros(DRY_BATCH, *input_shape))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (DRY_BATCH, num_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else f"a {type(out).__name__}"
        raise ValueError(f"the model returns {got}, not logits of shape ({DRY_BATCH}, {num_classes})")


def _blamed(
    timm, cfg: ModelConfig, variant: VariantConfig, input_shape: tuple[int, int, int], num_classes: int, e: Exception
) -> BnbenchError:
    """Whose fault `e` is, found by building and running the model again on the meta device without the kwargs:
    the kwargs', where it then works; else the norm's (a TypeError as it is built: the architecture takes no
    plain norm layer) or the data's (the model cannot run on inputs of its shape)."""
    from bnbench.nets.models import _raised  # models imports this module

    built = False
    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bare = _create(timm, cfg.name, {}, norm_layer_for(variant), input_shape, num_classes)
            built = True
            _check_logits(bare, input_shape, num_classes)
    except BnbenchError as own:
        return own
    except Exception as without:
        if isinstance(without, TypeError) and not built:
            return _refused(cfg, _raised(without))
        return BnbenchError(
            f"model: timm's {cfg.name} cannot {'train on' if built else 'be built for'} "
            f"{'x'.join(map(str, input_shape))} inputs with norm: {variant.norm} ({_raised(without)}); use larger "
            f"images, another norm or another model"
        )
    return BnbenchError(
        f"model.kwargs {brief(cfg.kwargs)}: timm's {cfg.name} raised {_raised(e)}; it builds and runs without "
        f"them, so fix or remove them"
    )


def _refused(cfg: ModelConfig, why: str) -> BnbenchError:
    return BnbenchError(
        f"model.name: timm's {cfg.name} does not take a plain norm layer through norm_layer ({why}), so bnbench "
        f"cannot swap its norm; choose one that does ({EXAMPLES})"
    )
