"""Architecture registry (timm style): ``@register_model`` factories and ``create_model``."""

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from .errors import ModelNotFoundError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., nn.Module])

_MODEL_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[F], F]:
    """Register a model factory under ``name``.

    The factory is called as ``factory(num_classes: int, in_channels: int, **kwargs) -> nn.Module`` and must
    return a module mapping ``(n, in_channels, H, W)`` float32 inputs to ``(n, num_classes)`` logits.

    Args:
        name: Registry key, exactly the name the API exposes (e.g. ``"digits-cnn"``).

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ValueError: If ``name`` is already registered.
    """

    def decorator(factory: F) -> F:
        if name in _MODEL_FACTORIES:
            raise ValueError(f"model architecture {name!r} is already registered")
        _MODEL_FACTORIES[name] = factory
        return factory

    return decorator


def create_model(arch: str, num_classes: int, in_channels: int, **kwargs: Any) -> nn.Module:
    """Build a randomly initialised model from the registry.

    Args:
        arch: Registry key (see ``list_models()``).
        num_classes: Number of output logits C.
        in_channels: Input channels (1 grayscale, 3 RGB).
        **kwargs: Architecture options; ``None`` values are dropped so callers can pass optional settings as-is.

    Returns:
        The module (in train mode, on CPU), mapping ``(n, in_channels, H, W)`` float32 to ``(n, C)`` logits.

    Raises:
        ModelNotFoundError: If ``arch`` is not registered; the message lists the known architectures.
    """
    factory = _MODEL_FACTORIES.get(arch)
    if factory is None:
        raise ModelNotFoundError(
            f"unknown model architecture {arch!r}; known architectures: {', '.join(list_models())}"
        )
    options = {key: value for key, value in kwargs.items() if value is not None}
    logger.debug("creating %s(num_classes=%d, in_channels=%d, %s)", arch, num_classes, in_channels, options)
    return factory(num_classes=num_classes, in_channels=in_channels, **options)


def list_models() -> list[str]:
    """Return the registered architecture names, sorted."""
    return sorted(_MODEL_FACTORIES)
