"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package: 70,000 28×28 grayscale photos of clothes.

`apt-get install dataset-fashion-mnist` puts the four IDX files (gzipped) under
`/usr/share/datasets/fashion-mnist/`; nothing is downloaded. The 60,000 training images are the train split and
the 10,000 test images the test split, as published.
"""

import gzip
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import ModelNotFoundError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
FASHION_SPEC_DEFAULTS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "num_classes": 10,
        "labels": FASHION_LABELS,
        "input_size": (28, 28),
        "channels": 1,
        "mean": (0.2860,),  # of the 60,000 training images, scaled to [0, 1]
        "std": (0.3530,),
    }
)
_SPLITS = {"train": "train", "test": "t10k"}


@dataclass(frozen=True)
class FashionData:
    """Fashion-MNIST images in file order, training images first.

    Attributes:
        images: `(n, 28, 28)` uint8 grayscale.
        labels: `(n,)` int64 class indices into `FASHION_LABELS`.
        split: `(n,)` `"train"` or `"test"`.
        index: `(n,)` int64 position of each image within its split's file.
    """

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.int64]
    split: npt.NDArray[np.str_]
    index: npt.NDArray[np.int64]


def load_fashion_images(directory: Path = FASHION_DIR, limit: int | None = None) -> FashionData:
    """Read both splits' IDX files (at most `limit` images of each).

    Raises:
        ModelNotFoundError: the files are missing (the message says which package installs them) or malformed.
    """
    parts = [_read_split(directory, split, limit) for split in _SPLITS]
    return FashionData(
        images=np.concatenate([images for images, _, _ in parts]),
        labels=np.concatenate([labels for _, labels, _ in parts]),
        split=np.concatenate(
            [np.full(len(labels), split) for (_, labels, _), split in zip(parts, _SPLITS, strict=True)]
        ),
        index=np.concatenate([np.arange(len(labels), dtype=np.int64) for _, labels, _ in parts]),
    )


def _read_split(directory: Path, split: str, limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    prefix = _SPLITS[split]
    images = _read_idx(directory / f"{prefix}-images-idx3-ubyte.gz", magic=2051, limit=limit)
    labels = _read_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", magic=2049, limit=limit)
    if len(images) != len(labels) or images.shape[1:] != (28, 28):
        raise ModelNotFoundError(f"{directory}: the {split} images and labels of Fashion-MNIST do not match")
    return images, labels.astype(np.int64), split


def _read_idx(path: Path, magic: int, limit: int | None) -> np.ndarray:
    """An IDX file (big-endian header: magic, then one count per dimension) as a uint8 array."""
    if not path.is_file():
        raise ModelNotFoundError(
            f"Fashion-MNIST is not installed ({path} is missing): install Debian's package with "
            "`apt-get install dataset-fashion-mnist`"
        )
    with gzip.open(path, "rb") as f:
        header = np.frombuffer(f.read(8), dtype=">u4")
        if header.size != 2 or header[0] != magic:
            raise ModelNotFoundError(f"{path} is not an IDX file of Fashion-MNIST (magic {header[:1]})")
        dims = [int(header[1])]
        if magic == 2051:
            dims += [int(v) for v in np.frombuffer(f.read(8), dtype=">u4")]
        count = dims[0] if limit is None else min(dims[0], limit)
        size = int(np.prod(dims[1:], dtype=np.int64)) if len(dims) > 1 else 1
        data = np.frombuffer(f.read(count * size), dtype=np.uint8)
    if data.size != count * size:
        raise ModelNotFoundError(f"{path} is truncated: reinstall `dataset-fashion-mnist`")
    return data.reshape(count, *dims[1:]) if len(dims) > 1 else data
