"""The model and variant sections of the experiment config: which network (the built-in mlp or cnn, a torchvision
or timm model by name, the user's factory) and which norm, where, each variant puts in it. Torch-free, so that a
config is validated without importing torch's model zoos; `bnbench.nets` builds what these describe.
"""

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from bnbench.experiment.fields import Count, Name, Strict, brief

NORMS = ("none", "batchnorm", "layernorm", "groupnorm", "instancenorm")
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")  # torchvision models bnbench builds
VGGS = ("vgg11", "vgg13", "vgg16", "vgg19")
GROUPS = 32  # GroupNorm's default number of groups (Wu & He's)
TIMM_ARGUMENTS = {  # what bnbench passes to timm.create_model itself, and whence
    "pretrained": "always False: every variant trains from the same-seed initial weights",
    "num_classes": "from the data set",
    "in_chans": "the data's channels",
    "norm_layer": "the variant's norm",
}
TIMM_WEIGHTS = ("checkpoint_path", "pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")  # files timm would read
# model field -> the kinds it may be set for; an mlp ignores channels, so that a sweep of model.kind can compare the
# mlp and the cnn
MODEL_FIELDS = {
    "hidden": ("mlp", "cnn"),
    "channels": ("mlp", "cnn"),
    "name": ("torchvision", "timm"),
    "width": ("torchvision",),
    "stem": ("torchvision",),
    "factory": ("factory",),
    "kwargs": ("factory", "timm"),
}


class ModelConfig(Strict):
    """The built-in mlp and cnn, a torchvision classification model by name, or the user's own `factory`."""

    kind: Literal["mlp", "cnn", "torchvision", "timm", "factory"] = "mlp"
    hidden: list[Count] = [64, 32]  # mlp: hidden widths; cnn: widths of the MLP head
    channels: list[Count] = [32, 64]  # cnn only: one 3x3 conv + 2x2 max-pool per entry
    name: str | None = None  # torchvision: resnet18 | ... | vgg11 | ... (see nets/zoo.py); timm: any timm model name
    width: Count = Field(64, le=4096)  # torchvision: channels of the first stage (64: torchvision's own)
    stem: Literal["cifar", "imagenet"] = "cifar"  # resnets: 3x3 conv without max-pool, or torchvision's 7x7/2 + pool
    factory: str | None = None  # factory: "module.path:callable", called with num_classes, in_shape, norm_layer
    kwargs: dict[str, Any] = {}  # factory, timm: further keyword arguments

    @field_validator("kwargs")
    @classmethod
    def _finite_kwargs(cls, kwargs: dict) -> dict:
        """config.yaml and meta.json are written as JSON numbers: an infinite or NaN one would be stored as null,
        and a resumed run would pass None."""
        for path, value in _leaves(kwargs):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{path}: {value} is not a finite number; give a finite one")
        return kwargs

    @model_validator(mode="after")
    def _fields_of_kind(self):
        """A field that this kind of model does not use would be ignored silently (`hidden` of a torchvision
        model): one set away from its default is refused. A value equal to the default cannot be told from the
        default itself, which every stored config.yaml writes out."""
        if self.kind == "torchvision" and self.name not in RESNETS + VGGS:
            raise ValueError(
                f"model.name: {brief(self.name)} is not a torchvision model bnbench builds; choose one "
                f"of {', '.join(RESNETS + VGGS)}"
            )
        if self.kind == "timm":
            self._check_timm()
        if self.kind == "factory" and not re.fullmatch(r"[\w.]+:[\w.]+", self.factory or ""):
            raise ValueError(
                f"model.factory: expected 'module.path:callable' (e.g. my_nets:make_net), got {brief(self.factory)}"
            )
        for field, kinds in MODEL_FIELDS.items():
            if self.kind not in kinds and getattr(self, field) != ModelConfig.model_fields[field].default:
                raise ValueError(
                    f"model.{field} is for model.kind: {' or '.join(kinds)}, not {self.kind}; remove it or set kind"
                )
        if self.name in VGGS and self.stem != ModelConfig.model_fields["stem"].default:
            raise ValueError(f"model.stem is for the resnets; {self.name} has no stem to replace; remove it")
        return self

    def _check_timm(self) -> None:
        """A timm model's name is checked against timm itself when it is built (timm is an optional extra, slow to
        import); here only its form, kwargs that would collide with what bnbench passes to create_model, and
        those that point timm at weight files (`checkpoint_path` loads any file it is given)."""
        if not re.fullmatch(r"[\w.-]+", self.name or ""):
            raise ValueError(f"model.name: expected a timm model name (e.g. resnet18), got {brief(self.name)}")
        taken = sorted(set(self.kwargs) & set(TIMM_ARGUMENTS))
        if taken:
            raise ValueError(
                f"model.kwargs: {', '.join(taken)} is set by bnbench ({TIMM_ARGUMENTS[taken[0]]}); remove it"
            )
        weights = [key for key in TIMM_WEIGHTS if key in self.kwargs]
        if weights:
            raise ValueError(
                f"model.kwargs: {weights[0]} says where timm finds pretrained weights, and bnbench loads none "
                f"(every variant trains from the same-seed initial weights); remove it"
            )

    def norms(self) -> tuple[str, ...]:
        """The norm kinds this model can be built with (a VGG comes as vggN and vggN_bn only)."""
        return ("none", "batchnorm") if self.kind == "torchvision" and self.name in VGGS else NORMS


class VariantConfig(Strict):
    LATER = ("overrides",)

    name: Name
    norm: Literal[NORMS] = "batchnorm"
    placement: Literal["before_activation", "after_activation"] = "before_activation"
    # groupnorm: groups (default GROUPS), clipped to a divisor of each width; strict, so `groups: true` is refused
    groups: Annotated[StrictInt, Field(gt=0)] | None = None
    # this variant's own optimizer settings, {dotted path: value} over the config's (and its sweep point's): each
    # variant at its own chosen learning rate (`bnbench tune`'s final stage); checked in config.Config
    overrides: dict[str, Any] = {}

    @model_validator(mode="after")
    def _groups_for_groupnorm(self):
        if self.groups is not None and self.norm != "groupnorm":
            raise ValueError(f"variant '{self.name}': groups is for norm: groupnorm, not {self.norm}; remove it")
        return self


def _leaves(value: Any, path: str = ""):
    """(dotted path, value) of every value inside nested mappings and lists."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
    if items is None:
        yield path, value
        return
    for key, item in items:
        yield from _leaves(item, f"{path}.{key}" if path else str(key))
