"""VGG11 with BatchNorm, CIFAR variant: 8 convs, 5 max pools, global average pool to 512*width features."""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import GeneNet, scaled
from engine.models.conv4 import ConvBlock
from engine.models.registry import register_model

#: Channels per conv; "M" is a 2x2 max pool after the conv before it.
VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG(GeneNet):
    """Each conv is a :class:`ConvBlock` (``blocks.i.conv`` / ``blocks.i.bn``), pooled where the config says.

    ``extra_layers`` appends unpooled conv blocks at the top (the PIM layers of deeper descendants).
    """

    def __init__(self, cfg: list[int | str], arch: str, num_classes: int, *, width: float = 1.0,
                 in_channels: int = 3, image_size: int = 32, extra_layers: int = 0) -> None:
        super().__init__()
        self.arch = arch
        blocks = []
        ch, side = in_channels, image_size
        for i, item in enumerate(cfg):
            if item == "M":
                continue
            pool = i + 1 < len(cfg) and cfg[i + 1] == "M"
            out = scaled(int(item), width)
            blocks.append(ConvBlock(ch, out, pool=pool))
            ch, side = out, side // 2 if pool else side
        if side < 1:
            raise ValueError(f"{arch}: image_size {image_size} is too small for its pooling stages")
        blocks += [ConvBlock(ch, ch, pool=False) for _ in range(extra_layers)]  # PIM layers of deeper descendants
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.feature_dim = ch
        self.head = nn.Linear(ch, num_classes)

    def _gene_convs(self) -> list[tuple[str, str | None, int, int]]:
        return [(f"blocks.{i}.conv", f"blocks.{i}.bn", i - 1, i) for i in range(len(self.blocks))]

    def features(self, x: Tensor) -> Tensor:
        return self.flatten(self.pool(self.blocks(x)))


@register_model("vgg11")
def vgg11(num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
          extra_layers: int = 0) -> VGG:
    return VGG(VGG11, "vgg11", num_classes, width=width, in_channels=in_channels, image_size=image_size,
               extra_layers=extra_layers)
