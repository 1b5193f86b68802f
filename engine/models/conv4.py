"""Conv-4, the standard few-shot backbone: 4 x [conv3x3 -> BN -> ReLU -> maxpool2], flattened."""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import GeneNet, scaled
from engine.models.registry import register_model


class ConvBlock(nn.Module):
    """conv3x3 (pad 1, no bias) -> BN -> ReLU, then an optional 2x2 max pool."""

    def __init__(self, in_ch: int, out_ch: int, pool: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


class Conv4(GeneNet):
    """Features are the flattened last block: 64*width x (image_size/16)^2 (256 at 32x32, 1600 at 84x84).

    ``extra_layers`` appends unpooled conv blocks at the top (the PIM layers of deeper descendants).
    """

    arch = "conv4"

    def __init__(self, num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
                 depth: int = 4, extra_layers: int = 0) -> None:
        super().__init__()
        ch = scaled(64, width)
        side = image_size
        blocks = []
        for i in range(depth):
            blocks.append(ConvBlock(in_channels if i == 0 else ch, ch))
            side //= 2
        if side < 1:
            raise ValueError(f"conv4: image_size {image_size} is too small for {depth} pooling stages")
        blocks += [ConvBlock(ch, ch, pool=False) for _ in range(extra_layers)]  # PIM layers of deeper descendants
        self.blocks = nn.Sequential(*blocks)
        self.flatten = nn.Flatten()
        self.feature_dim = ch * side * side
        self.head = nn.Linear(self.feature_dim, num_classes)

    def _gene_convs(self) -> list[tuple[str, str | None, int, int]]:
        return [(f"blocks.{i}.conv", f"blocks.{i}.bn", i - 1, i) for i in range(len(self.blocks))]

    def features(self, x: Tensor) -> Tensor:
        return self.flatten(self.blocks(x))


@register_model("conv4")
def conv4(num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
          extra_layers: int = 0) -> Conv4:
    return Conv4(num_classes, width=width, in_channels=in_channels, image_size=image_size, extra_layers=extra_layers)
