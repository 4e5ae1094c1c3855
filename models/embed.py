"""The model step of embedding: a preprocessed batch in, C-contiguous float32 logits out."""

import numpy as np
import torch
from torch import nn


def logits_from_images(model: nn.Module, images: torch.Tensor, device: torch.device) -> np.ndarray:
    """Run ``model`` on a preprocessed batch without autograd.

    Args:
        model: Classifier in eval mode, already on ``device``.
        images: ``(n, channels, H, W)`` float32 preprocessed inputs (any device).
        device: Device to run on.

    Returns:
        ``(n, C)`` float32 C-contiguous CPU array of raw logits, the layout FAISS expects.
    """
    with torch.inference_mode():
        logits = model(images.to(device, dtype=torch.float32))
        array = logits.detach().to("cpu", dtype=torch.float32).numpy()
    return np.ascontiguousarray(array, dtype=np.float32)
