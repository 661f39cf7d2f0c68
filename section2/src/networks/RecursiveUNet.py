# Generated from solution/section2/src/networks/RecursiveUNet.py by tools/make_skeleton.py; edit that file, then run the tool.
"""A 2D U-Net built recursively from skip-connection blocks.

U-Net: Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015. The recursive construction (each block wraps the next-deeper one)
follows the course starter's interface: ``UNet`` and ``UnetSkipConnectionBlock``.

Shapes: input [B, in_channels, H, W] with H and W divisible by 2**num_downs; output logits
[B, num_classes, H, W] (no softmax: ``nn.CrossEntropyLoss`` applies log-softmax itself).
"""

from __future__ import annotations

import torch
from torch import nn

POOL_FACTOR = 2  # each level halves H and W with a 2x2 max-pool and doubles the filters


def conv_norm_act(in_channels: int, out_channels: int, kernel_size: int,
                  norm_layer: type[nn.Module]) -> nn.Sequential:
    """Two 'same'-padded convolutions, each followed by normalisation and LeakyReLU.

    Args:
        in_channels: channels C of the input [B, C, H, W].
        out_channels: channels of the output [B, out_channels, H, W].
        kernel_size: odd kernel size, so that padding kernel_size // 2 keeps H and W.
        norm_layer: normalisation class called with the channel count (e.g. nn.InstanceNorm2d).

    Returns:
        The block as an ``nn.Sequential``.
    """
    padding = kernel_size // 2
    return nn.Sequential(
        # The normalisation that follows removes any per-channel offset, so a bias is wasted.
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False),
        norm_layer(out_channels),
        nn.LeakyReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size, padding=padding, bias=False),
        norm_layer(out_channels),
        nn.LeakyReLU(inplace=True),
    )


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: encode, hand a pooled copy to the deeper block, decode with the skip.

    The innermost block is the bottleneck (two convolutions, nothing deeper). Every other block
    encodes [B, in_channels, H, W] to [B, out_channels, H, W], max-pools to H/2 x W/2, runs
    ``submodule`` (which returns 2 * out_channels channels), upsamples back with a transposed
    convolution, concatenates the skip and decodes to out_channels. The outermost block ends
    with a 1x1 convolution to ``num_classes`` logits.

    Args:
        in_channels: channels of this block's input.
        out_channels: filters of this level.
        num_classes: logits channels of the outermost block (ignored elsewhere).
        kernel_size: convolution kernel size (odd).
        submodule: the next-deeper block; None for the innermost block.
        outermost: whether this block produces the network's logits.
        innermost: whether this block is the bottleneck.
        norm_layer: normalisation class.
    """

    def __init__(self, in_channels: int, out_channels: int, num_classes: int = 1,
                 kernel_size: int = 3, submodule: nn.Module | None = None,
                 outermost: bool = False, innermost: bool = False,
                 norm_layer: type[nn.Module] = nn.InstanceNorm2d) -> None:
        super().__init__()
        if innermost == (submodule is not None):
            raise ValueError("the innermost block takes no submodule; every other block needs one")
        self.innermost = innermost
        self.encode = conv_norm_act(in_channels, out_channels, kernel_size, norm_layer)
        if innermost:
            return
        self.down = nn.MaxPool2d(POOL_FACTOR)
        self.submodule = submodule
        self.up = nn.ConvTranspose2d(POOL_FACTOR * out_channels, out_channels,
                                     kernel_size=POOL_FACTOR, stride=POOL_FACTOR)
        # The decoder sees the upsampled features and the skip, concatenated on C.
        self.decode = conv_norm_act(2 * out_channels, out_channels, kernel_size, norm_layer)
        self.head = nn.Conv2d(out_channels, num_classes, kernel_size=1) if outermost else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [B, in_channels, H, W] to [B, out_channels, H, W] (logits if outermost)."""
        skip = self.encode(x)
        if self.innermost:
            return skip
        deeper = self.submodule(self.down(skip))
        out = self.decode(torch.cat([skip, self.up(deeper)], dim=1))
        return self.head(out) if self.head is not None else out


class UNet(nn.Module):
    """Recursive 2D U-Net returning per-pixel class logits.

    Args:
        num_classes: output channels; 3 for background, anterior and posterior hippocampus.
        in_channels: input channels; 1 for a single MRI slice.
        initial_filter_size: filters of the first level; level k has initial_filter_size * 2**k.
        kernel_size: convolution kernel size (odd).
        num_downs: number of 2x poolings; H and W must be divisible by 2**num_downs.
        norm_layer: normalisation class (InstanceNorm2d by default, as in the course starter).

    Shapes:
        input float32 [B, in_channels, H, W]; output float32 logits [B, num_classes, H, W].

    Raises:
        ValueError: in ``__init__`` when num_downs < 1 or the kernel size is even; in
            ``forward`` when H or W is not divisible by 2**num_downs.
    """

    def __init__(self, num_classes: int = 3, in_channels: int = 1, initial_filter_size: int = 64,
                 kernel_size: int = 3, num_downs: int = 4,
                 norm_layer: type[nn.Module] = nn.InstanceNorm2d) -> None:
        super().__init__()
        if num_downs < 1:
            raise ValueError(f"num_downs must be at least 1, got {num_downs}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd to keep H and W, got {kernel_size}")
        self.num_downs = num_downs
        filters = [initial_filter_size * POOL_FACTOR ** level for level in range(num_downs + 1)]
        block = UnetSkipConnectionBlock(filters[-2], filters[-1], kernel_size=kernel_size,
                                        innermost=True, norm_layer=norm_layer)
        for level in range(num_downs - 1, 0, -1):
            block = UnetSkipConnectionBlock(filters[level - 1], filters[level],
                                            kernel_size=kernel_size, submodule=block,
                                            norm_layer=norm_layer)
        self.model = UnetSkipConnectionBlock(in_channels, filters[0], num_classes=num_classes,
                                             kernel_size=kernel_size, submodule=block,
                                             outermost=True, norm_layer=norm_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits [B, num_classes, H, W] for images [B, in_channels, H, W]."""
        multiple = POOL_FACTOR ** self.num_downs
        height, width = x.shape[-2:]
        if height % multiple or width % multiple:
            raise ValueError(f"input H x W = {height} x {width} must be divisible by "
                             f"2**num_downs = {multiple}; pad it with med_reshape first")
        return self.model(x)
