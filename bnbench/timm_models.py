"""timm's models by name with a variant's norm, for `model.kind: timm` (see `models`).

A module of its own because timm is an optional extra (`pip install 'bnbench[timm]'`) and slow to import: runs of
the other models never import it. The norm goes in through timm's own `norm_layer` argument; whether an
architecture takes one is found by trying: `timm.create_model` raises a TypeError naming norm_layer for one whose
constructor has no such argument, a TypeError from the norm's constructor for one that uses it as a norm plus
activation layer (EfficientNet, RegNet: `apply_act=`, `inplace=`), and a model that swallows the argument without
calling it is caught by the call count. Either way the network could not be compared across norms, so it is refused.
"""

import difflib
from collections.abc import Callable

from torch import nn

from .config import ModelConfig, VariantConfig
from .errors import BnbenchError

EXAMPLES = "e.g. resnet18, resnet10t, resnet50, densenet121"  # architectures that take a plain norm_layer


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
    timm's own architecture (stem included: the data's channels come in through in_chans), no weights downloaded."""
    timm = load_timm()
    if not timm.is_model(cfg.name):
        close = difflib.get_close_matches(cfg.name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
        raise BnbenchError(f"model.name: {cfg.name} is not a timm model ({hint})")
    try:
        model = timm.create_model(
            cfg.name,
            pretrained=False,
            num_classes=num_classes,
            in_chans=input_shape[0],
            norm_layer=norm_layer,
            **cfg.kwargs,
        )
    except TypeError as e:
        if "norm_layer" not in str(e) and norm_layer.calls == 0:  # not about the norm: the kwargs, most likely
            raise BnbenchError(f"model.kwargs: timm's {cfg.name} raised TypeError: {e}") from None
        raise _refused(cfg, f"TypeError: {e}") from None
    except (ValueError, RuntimeError, AssertionError) as e:  # timm's checks of the kwargs
        raise BnbenchError(f"model.kwargs: timm's {cfg.name} raised {type(e).__name__}: {e}") from None
    if norm_layer.calls == 0:
        raise _refused(cfg, "it accepts norm_layer but never calls it")
    return model


def _refused(cfg: ModelConfig, why: str) -> BnbenchError:
    return BnbenchError(
        f"model.name: timm's {cfg.name} does not take a plain norm layer through norm_layer ({why}), so bnbench "
        f"cannot swap its norm; choose one that does ({EXAMPLES})"
    )
