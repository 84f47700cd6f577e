"""torchvision's ResNets and VGGs with a variant's norm, for `model.kind: torchvision` (see `models`).

A module of its own because importing torchvision.models imports torch._dynamo, which is slow (docs/performance.md)
and which runs of the built-in models and factories never pay. The model names are listed once, in
experiment.model_variants (RESNETS, VGGS: torch-free, for validating configs); the tables here follow their order.
"""

from collections.abc import Callable

from torch import nn
from torchvision.models import resnet as tv_resnet
from torchvision.models import vgg as tv_vgg

from bnbench.errors import BnbenchError
from bnbench.experiment.model_variants import RESNETS, VGGS, ModelConfig, VariantConfig

# torchvision's resnetN() for resnet18 .. resnet152: block, blocks per stage
RESNET_BLOCKS = dict(
    zip(
        RESNETS,
        [
            (tv_resnet.BasicBlock, [2, 2, 2, 2]),
            (tv_resnet.BasicBlock, [3, 4, 6, 3]),
            (tv_resnet.Bottleneck, [3, 4, 6, 3]),
            (tv_resnet.Bottleneck, [3, 4, 23, 3]),
            (tv_resnet.Bottleneck, [3, 8, 36, 3]),
        ],
        strict=True,
    )
)
VGG_LAYOUTS = dict(zip(VGGS, "ABDE", strict=True))  # vgg11 .. vgg19: torchvision's layer tables (vgg.cfgs)


class _ScaledResNet(tv_resnet.ResNet):
    """torchvision's ResNet with its stage widths scaled to `width` (64, 128, 256, 512 at width 64)."""

    def __init__(self, width: int, *args, **kwargs):
        self.width = width
        super().__init__(*args, **kwargs)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # the first stage: it follows the stem, which gets `width` channels
            self.inplanes = self.width
        return super()._make_layer(block, planes * self.width // 64, blocks, stride, dilate)


def create(
    cfg: ModelConfig,
    variant: VariantConfig,
    norm_layer: Callable[[int], nn.Module],
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> nn.Module:
    """The ResNet or VGG `cfg` names, as `models._from_zoo` builds every zoo's models (timm's too): a ResNet takes
    the variant's norm through `norm_layer`, a VGG comes with BatchNorm or without (`variant.norm`)."""
    if cfg.name in RESNETS:
        return _resnet(cfg, norm_layer, input_shape[0], num_classes)
    return _vgg(cfg, variant.norm, input_shape, num_classes)


def _resnet(cfg: ModelConfig, norm_layer: Callable[[int], nn.Module], channels: int, num_classes: int) -> nn.Module:
    block, layers = RESNET_BLOCKS[cfg.name]
    model = _ScaledResNet(cfg.width, block, layers, num_classes=num_classes, norm_layer=norm_layer)
    width = cfg.width
    if cfg.stem == "cifar":
        model.conv1 = nn.Conv2d(channels, width, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    else:
        model.conv1 = nn.Conv2d(channels, width, 7, stride=2, padding=3, bias=False)
    model.bn1 = norm_layer(width)
    model.fc = nn.Linear(8 * width * block.expansion, num_classes)
    return model


def _vgg(cfg: ModelConfig, norm: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """torchvision's VGG from its own layer table and `make_layers`, scaled to `width` (the classifier's 4096
    hidden units scale with it); five 2x2 max-pools need inputs of 32x32 or more."""
    layout = tv_vgg.cfgs[VGG_LAYOUTS[cfg.name]]
    if min(input_shape[1:]) < 32:
        raise BnbenchError(
            f"model.name: {cfg.name} max-pools five times and needs inputs of at least 32x32, not "
            f"{input_shape[1]}x{input_shape[2]}; use a resnet (stem: cifar) or model.kind: cnn"
        )
    features = tv_vgg.make_layers([v if v == "M" else v * cfg.width // 64 for v in layout], batch_norm=True)
    for i, layer in enumerate(features):  # vggN is vggN_bn without its BatchNorm2d: Identity keeps the names
        if isinstance(layer, nn.BatchNorm2d) and norm == "none":
            features[i] = nn.Identity()
    model = tv_vgg.VGG(features, num_classes=num_classes)
    model.features[0] = nn.Conv2d(input_shape[0], cfg.width, 3, padding=1)
    hidden = 64 * cfg.width
    for i, (n_in, n_out) in zip((0, 3, 6), [(8 * cfg.width * 7 * 7, hidden), (hidden, hidden), (hidden, num_classes)]):
        model.classifier[i] = nn.Linear(n_in, n_out)
    return model
