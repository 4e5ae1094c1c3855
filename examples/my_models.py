"""A model plugin: registers the architecture `small-convnet` for `LOGITSEARCH_PLUGINS=my_models`.

Any `nn.Module` that maps `(n, channels, H, W)` float32 images to `(n, C)` logits can be served; a torchvision or
timm model registers the same way (`return resnet18(weights=None, num_classes=num_classes)`: a factory never
downloads weights).
"""

from torch import nn

from models import register_model


@register_model("small-convnet")
def build_small_convnet(num_classes: int, in_channels: int, width: int = 32) -> nn.Module:
    """A two-layer CNN; `width` comes back from the spec's `arch_kwargs` when the model loads."""
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )
