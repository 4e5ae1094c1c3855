"""scikit-learn's bundled 8x8 digits as uint8 images with a fixed stratified train/test split."""

import functools
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# Mean and std of the train split's pixels scaled to [0, 1] (0.30543, 0.37596), rounded; tests check them.
DIGITS_SPEC_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "num_classes": 10,
        "labels": tuple(str(digit) for digit in range(10)),
        "input_size": (8, 8),
        "channels": 1,
        "mean": (0.3054,),
        "std": (0.376,),
    }
)


@dataclass(frozen=True)
class DigitsData:
    """The 1797 digits in ``load_digits`` order (read-only arrays).

    Attributes:
        images: ``(1797, 8, 8)`` uint8, ``round(v * 255 / 16)`` of the 0..16 values (ink is bright).
        labels: ``(1797,)`` int64 class 0..9.
        split: ``(1797,)`` str, ``"train"`` (80%) or ``"test"`` (20%), stratified, ``random_state=0``.
    """

    images: np.ndarray
    labels: np.ndarray
    split: np.ndarray


@functools.lru_cache(maxsize=1)
def load_digit_images() -> DigitsData:
    """Return the digits dataset (cached; bundled with scikit-learn, no network)."""
    bunch = load_digits()
    images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    _, test_indices = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0)
    split = np.full(len(labels), "train", dtype="<U5")
    split[test_indices] = "test"
    for array in (images, labels, split):
        array.setflags(write=False)
    return DigitsData(images=images, labels=labels, split=split)
