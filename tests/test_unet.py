"""UNet: logits shape, input checks, raw logits, pooling depth and gradient flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from networks.RecursiveUNet import UNet

# Tiny tensors run fastest on one thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded_unet(**kwargs) -> UNet:
    """A UNet with weights drawn from a fixed seed."""
    torch.manual_seed(0)
    return UNet(**kwargs)


@pytest.mark.parametrize(
    "num_downs, initial_filter_size, height, width",
    [
        (1, 2, 4, 2),     # small input for one pooling (bottleneck 2 x 1)
        (1, 4, 6, 10),    # non-square, divisible by 2
        (2, 4, 8, 12),    # divisible by 4
        (3, 2, 16, 8),    # divisible by 8
        (4, 2, 16, 32),   # divisible by 16
        (4, 4, 64, 64),   # the course patch size
    ],
)
def test_unet_output_is_logits_of_shape_batch_classes_height_width(num_downs,
                                                                    initial_filter_size,
                                                                    height, width):
    model = seeded_unet(num_classes=3, initial_filter_size=initial_filter_size,
                        num_downs=num_downs)
    x = torch.rand(2, 1, height, width)  # [B=2, C=1, H, W]
    out = model(x)
    assert out.shape == (2, 3, height, width)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("num_classes, in_channels", [(2, 1), (3, 2), (5, 3)])
def test_unet_honours_num_classes_and_in_channels(num_classes, in_channels):
    model = seeded_unet(num_classes=num_classes, in_channels=in_channels,
                        initial_filter_size=2, num_downs=2)
    x = torch.rand(1, in_channels, 8, 8)  # [B=1, C, 8, 8]
    assert model(x).shape == (1, num_classes, 8, 8)


@pytest.mark.parametrize(
    "num_downs, height, width",
    [
        (1, 7, 8),     # odd H
        (2, 8, 6),     # W divisible by 2 but not by 4
        (3, 12, 16),   # H divisible by 4 but not by 8
        (4, 64, 40),   # W = 40 not divisible by 16
    ],
)
def test_unet_rejects_input_not_divisible_by_two_to_the_num_downs(num_downs, height, width):
    model = seeded_unet(initial_filter_size=2, num_downs=num_downs)
    x = torch.rand(1, 1, height, width)  # [1, 1, H, W]
    with pytest.raises(ValueError, match=rf"divisible by 2\*\*num_downs = {2 ** num_downs}"):
        model(x)


@pytest.mark.parametrize("num_downs", [0, -1])
def test_unet_rejects_fewer_than_one_pooling(num_downs):
    with pytest.raises(ValueError, match="num_downs must be at least 1"):
        UNet(initial_filter_size=2, num_downs=num_downs)


@pytest.mark.parametrize("kernel_size", [2, 4])
def test_unet_rejects_even_kernel_size(kernel_size):
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        UNet(initial_filter_size=2, num_downs=1, kernel_size=kernel_size)


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
def test_unet_with_odd_kernel_keeps_height_and_width(kernel_size):
    model = seeded_unet(initial_filter_size=2, num_downs=2, kernel_size=kernel_size)
    assert model(torch.rand(1, 1, 12, 8)).shape == (1, 3, 12, 8)  # [1, 1, 12, 8] in


def test_unet_output_is_raw_logits_not_probabilities():
    model = seeded_unet(initial_filter_size=4, num_downs=2)
    out = model(torch.rand(2, 1, 16, 16))  # [2, 3, 16, 16]
    per_pixel_sum = out.sum(dim=1)  # [2, 16, 16]
    # A softmax output would be non-negative and sum to 1 at every pixel.
    assert (out < 0).any()
    assert not torch.allclose(per_pixel_sum, torch.ones_like(per_pixel_sum), atol=1e-3)


@pytest.mark.parametrize("num_downs", [1, 2, 3, 4])
def test_unet_has_one_max_pool_per_num_downs(num_downs):
    model = UNet(initial_filter_size=2, num_downs=num_downs)
    pools = [module for module in model.modules() if isinstance(module, nn.MaxPool2d)]
    transposed = [module for module in model.modules() if isinstance(module, nn.ConvTranspose2d)]
    assert len(pools) == num_downs
    assert len(transposed) == num_downs


@pytest.mark.parametrize("num_downs, initial_filter_size", [(1, 4), (3, 2)])
def test_unet_deepest_level_has_initial_filters_times_two_to_the_num_downs(num_downs,
                                                                           initial_filter_size):
    model = UNet(initial_filter_size=initial_filter_size, num_downs=num_downs)
    widest = max(module.out_channels for module in model.modules()
                 if isinstance(module, nn.Conv2d))
    assert widest == initial_filter_size * 2 ** num_downs


def test_gradients_flow_from_the_loss_to_the_first_convolution():
    model = seeded_unet(initial_filter_size=4, num_downs=2)
    x = torch.rand(2, 1, 8, 8)  # [2, 1, 8, 8]
    target = torch.randint(0, 3, (2, 8, 8))  # [2, 8, 8] labels
    loss = nn.CrossEntropyLoss()(model(x), target)
    loss.backward()
    first_conv = next(module for module in model.modules() if isinstance(module, nn.Conv2d))
    assert first_conv.in_channels == 1
    assert first_conv.weight.grad is not None
    assert torch.isfinite(first_conv.weight.grad).all()
    assert first_conv.weight.grad.abs().sum() > 0


def test_every_parameter_receives_a_gradient():
    model = seeded_unet(initial_filter_size=2, num_downs=3)
    out = model(torch.rand(2, 1, 16, 16))  # [2, 3, 16, 16]
    out.square().mean().backward()
    missing = [name for name, param in model.named_parameters() if param.grad is None]
    assert missing == []
