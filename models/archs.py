"""Built-in architectures: ``digits-cnn``, ``mlp`` and the test-only ``tiny-cnn``."""

from collections.abc import Sequence

import torch
from torch import nn

from .registry import register_model


@register_model("digits-cnn")
def digits_cnn(
    num_classes: int, in_channels: int, width: int = 32, hidden: int = 128, dropout: float = 0.25
) -> nn.Module:
    """Small CNN for 8x8 digits: conv(width)-conv(2*width)-maxpool-fc(hidden)-fc(C).

    The adaptive pool is the identity on 8x8 inputs and lets other sizes work too.

    Args:
        num_classes: Number of output logits C.
        in_channels: Input channels.
        width: Channels of the first convolution.
        hidden: Units of the hidden fully connected layer.
        dropout: Dropout probability before the last layer (training only).

    Returns:
        Module mapping ``(n, in_channels, H, W)`` to ``(n, C)`` logits.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(2 * width * 16, hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


@register_model("mlp")
def mlp(
    num_classes: int,
    in_channels: int,
    input_size: Sequence[int] = (8, 8),
    hidden: Sequence[int] = (128, 64),
    dropout: float = 0.0,
) -> nn.Module:
    """Multilayer perceptron on flattened pixels.

    Args:
        num_classes: Number of output logits C.
        in_channels: Input channels.
        input_size: ``(height, width)`` of the inputs; fixes the first layer's size.
        hidden: Units of each hidden layer.
        dropout: Dropout probability after each hidden layer.

    Returns:
        Module mapping ``(n, in_channels, height, width)`` to ``(n, C)`` logits.
    """
    height, width = input_size
    layers: list[nn.Module] = [nn.Flatten()]
    features = in_channels * height * width
    for units in hidden:
        layers += [nn.Linear(features, units), nn.ReLU(), nn.Dropout(dropout)]
        features = units
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


@register_model("tiny-cnn")
def tiny_cnn(num_classes: int, in_channels: int, seed: int | None = None) -> nn.Module:
    """Random-init CNN of a few KB for tests and smoke runs; any input size works (adaptive pooling).

    Args:
        num_classes: Number of output logits C.
        in_channels: Input channels.
        seed: If given, initialise the weights from this seed without touching the global RNG.

    Returns:
        Module mapping ``(n, in_channels, H, W)`` to ``(n, C)`` logits.
    """
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(in_channels, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(8 * 4, num_classes),
        )
