"""ResNet12, the standard few-shot backbone (no DropBlock).

Four residual blocks of widths (64, 160, 320, 640) x width. A block: three conv3x3-BN (LeakyReLU 0.1 after the
first two), plus a conv1x1-BN shortcut, added, LeakyReLU 0.1, 2x2 max pool. Global average pool at the end.
Gene slots per block: conv1 out, conv2 out, block out; conv3 and the shortcut both write the block-out slot, so
the residual sum stays inside the gene.

``extra_layers`` appends :class:`ExtraBlock` s (the PIM blocks of deeper descendants): no pool, an identity
shortcut and no activation after the sum, so a residual branch that is zero on a channel passes it unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from engine.models.base import GeneNet, scaled
from engine.models.registry import register_model

WIDTHS = (64, 160, 320, 640)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.act1 = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.act2 = nn.LeakyReLU(0.1)
        self.conv3 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.shortcut_conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_ch)
        self.act3 = nn.LeakyReLU(0.1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + self.shortcut_bn(self.shortcut_conv(x))
        return self.pool(self.act3(out))


class ExtraBlock(nn.Module):
    """x + bn3(conv3(act(bn2(conv2(act(bn1(conv1(x)))))))), same width in and out, no pool."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.act1 = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.act2 = nn.LeakyReLU(0.1)
        self.conv3 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(ch)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        return x + self.bn3(self.conv3(out))


class ResNet12(GeneNet):
    arch = "resnet12"

    def __init__(self, num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
                 extra_layers: int = 0) -> None:
        super().__init__()
        if image_size < 2 ** len(WIDTHS):
            raise ValueError(f"resnet12: image_size {image_size} is too small for {len(WIDTHS)} pooling stages")
        chans = [scaled(c, width) for c in WIDTHS]
        blocks: list[nn.Module] = [ResBlock(i, o) for i, o in zip([in_channels, *chans[:-1]], chans, strict=True)]
        blocks += [ExtraBlock(chans[-1]) for _ in range(extra_layers)]
        self.num_main = len(chans)
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.feature_dim = chans[-1]
        self.head = nn.Linear(chans[-1], num_classes)

    def _gene_convs(self) -> list[tuple[str, str | None, int, int]]:
        refs: list[tuple[str, str | None, int, int]] = []
        for b in range(self.num_main):
            p, base = f"blocks.{b}.", 3 * b
            prev = base - 1  # the previous block's out slot; -1 (the image) for the first block
            refs += [
                (p + "conv1", p + "bn1", prev, base),
                (p + "conv2", p + "bn2", base, base + 1),
                (p + "conv3", p + "bn3", base + 1, base + 2),
                (p + "shortcut_conv", p + "shortcut_bn", prev, base + 2),
            ]
        out = 3 * self.num_main - 1  # the last block's out slot: extra blocks add their residual into it
        for k in range(len(self.blocks) - self.num_main):
            p, s = f"blocks.{self.num_main + k}.", 3 * self.num_main + 2 * k
            refs += [(p + "conv1", p + "bn1", out, s), (p + "conv2", p + "bn2", s, s + 1),
                     (p + "conv3", p + "bn3", s + 1, out)]
        return refs

    def features(self, x: Tensor) -> Tensor:
        return self.flatten(self.pool(self.blocks(x)))


@register_model("resnet12")
def resnet12(num_classes: int, *, width: float = 1.0, in_channels: int = 3, image_size: int = 32,
             extra_layers: int = 0) -> ResNet12:
    return ResNet12(num_classes, width=width, in_channels=in_channels, image_size=image_size,
                    extra_layers=extra_layers)
