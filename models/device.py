"""Torch device resolution: the only place that decides between CPU and CUDA."""

import torch

from .errors import ModelError

DEVICE_SETTINGS = ("auto", "cpu", "cuda")


def resolve_device(setting: str) -> torch.device:
    """Map a device setting to a torch device.

    Args:
        setting: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The resolved device.

    Raises:
        ModelError: If the setting is unknown, or CUDA is requested but unavailable.
    """
    value = setting.strip().lower()
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    if value == "cuda" or value.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ModelError(
                f"device {setting!r} requested but CUDA is not available "
                f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
                "install a CUDA build of torch or use device 'cpu' or 'auto'"
            )
        device = torch.device(value)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"device {setting!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return device
    raise ModelError(f"unknown device setting {setting!r}; expected one of {', '.join(DEVICE_SETTINGS)}")
