"""Training datasets: the bundled digits and folders of images (one sub-folder per class), through the serving path.

Both produce a ``LabeledImages`` whose inputs are exactly what ``preprocess`` gives for the same images at serving
time, with a stratified 80/20 train/test split (``random_state=0``).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split

from .digits import DIGITS_SPEC_DEFAULTS, load_digit_images
from .errors import ImageError, TrainingConfigError
from .fashion import FASHION_SPEC_DEFAULTS, load_fashion_images
from .images import array_to_image, decode_image, preprocess
from .spec import ModelSpec

logger = logging.getLogger(__name__)

# Per-file limits for training images (the service's defaults for uploads).
MAX_IMAGE_BYTES = 10 * 2**20
MAX_IMAGE_PIXELS = 25_000_000
# A folder whose images all share one size up to this side is used at that size; otherwise images are resized to
# FOLDER_INPUT_SIZE.
MAX_NATIVE_SIDE = 64
FOLDER_INPUT_SIZE = (32, 32)
_GRAY_MODES = ("1", "L", "LA", "La")
_CHUNK = 256  # images decoded and preprocessed at a time, to bound memory


@dataclass(frozen=True)
class LabeledImages:
    """A dataset prepared for training.

    Attributes:
        inputs: ``(n, channels, H, W)`` float32, output of ``preprocess`` with the spec fields below.
        labels: ``(n,)`` int64 class indices.
        is_train: ``(n,)`` bool, True for the train split, False for test.
        spec_fields: ``ModelSpec`` fields describing classes and preprocessing: ``num_classes``, ``labels``,
            ``input_size``, ``channels``, ``mean``, ``std``.
        source: ``"digits"`` or the folder's path, recorded in the model spec.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    is_train: torch.Tensor
    spec_fields: dict[str, Any]
    source: str = "digits"


def load_dataset(data: str, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> LabeledImages:
    """Load ``"digits"`` (the bundled default), ``"fashion-mnist"`` or a folder of images given by its path.

    Args:
        data: ``"digits"``, ``"fashion-mnist"`` (Debian's ``dataset-fashion-mnist``), or a directory with one
            sub-folder of images per class (write ``./digits`` for a folder named like a keyword).
        max_bytes: Largest accepted image file.
        max_pixels: Largest accepted decoded image (width x height).

    Returns:
        The prepared dataset.

    Raises:
        TrainingConfigError: For a missing folder, fewer than two classes, a class too small to split, or a file
            that is not a readable image within the limits (the message names the file).
    """
    if data == "digits":
        return load_digits_dataset()
    if data == "fashion-mnist":
        return load_fashion_dataset()
    return load_image_folder(Path(data), max_bytes=max_bytes, max_pixels=max_pixels)


def load_fashion_dataset(limit: int | None = None) -> LabeledImages:
    """Fashion-MNIST through the serving path (uint8 pixels -> image -> ``preprocess``), its published split.

    Args:
        limit: at most this many images of each split (default all: 60,000 + 10,000).

    Raises:
        ModelNotFoundError: the Debian package ``dataset-fashion-mnist`` is not installed.
    """
    fashion = load_fashion_images(limit=limit)
    fields = dict(FASHION_SPEC_DEFAULTS)
    spec = ModelSpec(name="fashion", arch="any", **fields)
    inputs = torch.cat(
        [
            preprocess([Image.fromarray(pixels, mode="L") for pixels in fashion.images[start : start + _CHUNK]], spec)
            for start in range(0, len(fashion.images), _CHUNK)
        ]
    )
    return LabeledImages(
        inputs=inputs,
        labels=torch.from_numpy(fashion.labels),
        is_train=torch.from_numpy(fashion.split == "train"),
        spec_fields=fields,
        source="fashion-mnist",
    )


def load_digits_dataset() -> LabeledImages:
    """Return the 1797 digits as uint8 pixels -> ``array_to_image`` -> ``preprocess``, with their fixed split."""
    digits = load_digit_images()
    fields = dict(DIGITS_SPEC_DEFAULTS)
    spec = ModelSpec(name="digits", arch="any", **fields)
    return LabeledImages(
        inputs=preprocess([array_to_image(pixels) for pixels in digits.images], spec),
        labels=torch.from_numpy(digits.labels.copy()),
        is_train=torch.from_numpy(digits.split == "train"),
        spec_fields=fields,
    )


def load_image_folder(
    root: Path, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS
) -> LabeledImages:
    """Load ``root/<class>/**/<image>``: labels are the sorted sub-folder names; hidden files are skipped.

    Every file is decoded once up front to validate it and to choose the input size and channels: a folder whose
    images all share one size (sides <= ``MAX_NATIVE_SIDE``) keeps it, otherwise ``FOLDER_INPUT_SIZE``; grayscale
    when every image is, else RGB. The per-channel mean and std come from the train split's pixels (4 decimals).

    Args:
        root: Dataset directory.
        max_bytes: Largest accepted image file.
        max_pixels: Largest accepted decoded image.

    Returns:
        The prepared dataset, inputs normalised exactly as ``preprocess`` does with the returned spec fields.

    Raises:
        TrainingConfigError: See ``load_dataset``.
    """
    paths, labels, class_names = _list_folder(root)
    sizes, modes = set(), set()
    for image in _decode_all(paths, max_bytes, max_pixels):
        sizes.add(image.size)
        modes.add(image.mode)
    width, height = next(iter(sizes))
    input_size = (height, width) if len(sizes) == 1 and max(width, height) <= MAX_NATIVE_SIDE else FOLDER_INPUT_SIZE
    channels = 1 if modes <= set(_GRAY_MODES) else 3
    is_train = _stratified_split(labels, root)
    raw = ModelSpec(
        name="folder", arch="any", num_classes=len(class_names), labels=class_names, input_size=input_size,
        channels=channels, mean=(0.0,) * channels, std=(1.0,) * channels,
    )  # fmt: skip
    pixels = torch.cat([preprocess(chunk, raw) for chunk in _chunks(_decode_all(paths, max_bytes, max_pixels))])
    train_pixels = pixels[torch.from_numpy(is_train)].transpose(0, 1).reshape(channels, -1).double()
    mean = tuple(round(float(v), 4) for v in train_pixels.mean(dim=1))
    std = tuple(max(round(float(v), 4), 1e-3) for v in train_pixels.std(dim=1))
    # Same float32 operations as preprocess: (x / 255 - mean) / std, with x / 255 already done above.
    inputs = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    fields = {"num_classes": len(class_names), "labels": class_names, "input_size": input_size}
    logger.info("loaded %d images in %d classes from %s at %s", len(paths), len(class_names), root, input_size)
    return LabeledImages(
        inputs=inputs.contiguous(),
        labels=torch.from_numpy(labels),
        is_train=torch.from_numpy(is_train),
        spec_fields={**fields, "channels": channels, "mean": mean, "std": std},
        source=str(root),
    )


def _list_folder(root: Path) -> tuple[list[Path], np.ndarray, tuple[str, ...]]:
    """Return the image paths, their ``(n,)`` int64 labels and the sorted class names."""
    if not root.is_dir():
        raise TrainingConfigError(
            f"dataset folder {root} does not exist; give a directory with one sub-folder per class"
        )
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if len(classes) < 2:
        raise TrainingConfigError(
            f"{root} has {len(classes)} class sub-folder(s); need at least 2 to train a classifier"
        )
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(
            p
            for p in (root / name).rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if len(files) < 2:
            raise TrainingConfigError(f"class {name!r} in {root} has {len(files)} image(s); need >= 2 to split 80/20")
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), classes


def _decode_all(paths: list[Path], max_bytes: int, max_pixels: int) -> Iterator[Image.Image]:
    for path in paths:
        try:
            yield decode_image(path.read_bytes(), max_bytes=max_bytes, max_pixels=max_pixels)
        except (ImageError, OSError) as e:
            raise TrainingConfigError(f"cannot use {path} as a training image: {e}") from e


def _chunks(images: Iterator[Image.Image]) -> Iterator[list[Image.Image]]:
    chunk: list[Image.Image] = []
    for image in images:
        chunk.append(image)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stratified_split(labels: np.ndarray, root: Path) -> np.ndarray:
    """Return ``(n,)`` bool, True for train: stratified 80/20 with ``random_state=0``, as for the digits."""
    try:
        _, test = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=0)
    except ValueError as e:
        raise TrainingConfigError(f"cannot split {root} 80/20 per class ({e}); add images to the small classes") from e
    is_train = np.ones(len(labels), dtype=bool)
    is_train[test] = False
    return is_train
