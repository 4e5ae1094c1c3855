"""Embedding many images fast: decoding and preprocessing in DataLoader workers, the model in batches on its device.

Workers decode and preprocess while the main process runs the model, so on a CPU the two overlap, and on a GPU
the device is fed without waiting for PIL. When asked, they also make each image's thumbnail (`thumbnails.py`). Batches come back in order with their positions; an unreadable file
does not stop the run: it comes back as an error naming the file, for the caller to report.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from .classifier import Classifier
from .errors import ImageError, ModelError
from .images import decode_image, preprocess
from .spec import ModelSpec
from .thumbnails import make_thumbnail

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "bf16", "fp16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

# One batch as a worker hands it over: the readable images preprocessed ``(m, channels, H, W)``, the dataset
# positions of the whole batch ``(b,)``, "" or why each could not be read, and each one's encoded thumbnail (b"" when
# none was asked for, none fits, or it is unreadable).
LoadedBatch = tuple[torch.Tensor, torch.Tensor, list[str], list[bytes]]


def _thumbnail(image: Image.Image, max_bytes: int | None) -> bytes:
    return (make_thumbnail(image, max_bytes) or b"") if max_bytes is not None else b""


class ImageSource(Protocol):
    """Pictures to embed, read one by one (in whichever process loads them); ``spec`` says how to preprocess them."""

    spec: ModelSpec
    thumbnail_bytes: int | None  # with a value, each readable picture also gets a thumbnail of at most that size

    def __len__(self) -> int: ...

    def read(self, position: int) -> Image.Image:
        """The picture at ``position``; raises ``ImageError`` or ``OSError`` (naming it) when it cannot be read."""
        ...

    def part(self, start: int, stop: int) -> "ImageSource":
        """Positions ``start`` to ``stop`` as a source of their own (small to pickle: what a cluster task carries)."""
        ...


class ImageFiles:
    """Image files, decoded with the upload limits."""

    def __init__(
        self,
        paths: Sequence[Path],
        spec: ModelSpec,
        max_bytes: int,
        max_pixels: int,
        thumbnail_bytes: int | None = None,
    ) -> None:
        self.paths, self.spec, self.max_bytes, self.max_pixels = list(paths), spec, max_bytes, max_pixels
        self.thumbnail_bytes = thumbnail_bytes

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, position: int) -> Image.Image:
        path = self.paths[position]
        try:
            return decode_image(path.read_bytes(), max_bytes=self.max_bytes, max_pixels=self.max_pixels)
        except (ImageError, OSError) as e:
            raise type(e)(f"{path}: {e}") from e

    def part(self, start: int, stop: int) -> "ImageFiles":
        return ImageFiles(self.paths[start:stop], self.spec, self.max_bytes, self.max_pixels, self.thumbnail_bytes)


class PixelArrays:
    """In-memory uint8 pictures: ``(n, H, W)`` grayscale or ``(n, H, W, 3)`` RGB."""

    def __init__(self, pixels: npt.NDArray[np.uint8], spec: ModelSpec, thumbnail_bytes: int | None = None) -> None:
        self.pixels, self.spec, self.thumbnail_bytes = pixels, spec, thumbnail_bytes

    def __len__(self) -> int:
        return len(self.pixels)

    def read(self, position: int) -> Image.Image:
        return Image.fromarray(self.pixels[position])

    def part(self, start: int, stop: int) -> "PixelArrays":
        return PixelArrays(self.pixels[start:stop], self.spec, self.thumbnail_bytes)


class _Batches(Dataset[LoadedBatch]):
    """Batch ``b`` of a source, read and preprocessed together: one hand-over per batch, not per picture."""

    def __init__(self, source: ImageSource, batch_size: int) -> None:
        self.source, self.batch_size = source, batch_size

    def __len__(self) -> int:
        return -(-len(self.source) // self.batch_size)

    def __getitem__(self, batch: int) -> LoadedBatch:
        positions = range(batch * self.batch_size, min((batch + 1) * self.batch_size, len(self.source)))
        images, errors, thumbnails = [], [], []
        for position in positions:
            try:
                image = self.source.read(position)
            except (ImageError, OSError) as e:
                errors.append(str(e) or type(e).__name__)
                thumbnails.append(b"")
                continue
            images.append(image)
            errors.append("")
            thumbnails.append(_thumbnail(image, self.source.thumbnail_bytes))
        x = preprocess(images, self.source.spec)
        return x, torch.tensor(list(positions), dtype=torch.int64), errors, thumbnails


@dataclass(frozen=True)
class EmbeddedBatch:
    """Logits of one batch, in dataset order.

    Attributes:
        positions: ``(m,)`` int64 dataset positions of the rows of ``logits`` (readable images only).
        logits: ``(m, C)`` float32 C-contiguous.
        errors: One ``"path: reason"`` per unreadable image of the batch.
        thumbnails: the encoded thumbnail of each row, or None (none asked for, or none fits).
    """

    positions: npt.NDArray[np.int64]
    logits: npt.NDArray[np.float32]
    errors: list[str]
    thumbnails: list[bytes | None]


def default_workers() -> int:
    """Decoding processes: one core less than the machine has (the model keeps one), from 1 to 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def embed_dataset(
    classifier: Classifier,
    source: ImageSource,
    batch_size: int = 256,
    workers: int | None = None,
    precision: Precision = "fp32",
) -> Iterator[EmbeddedBatch]:
    """Yield the logits of ``source`` batch by batch, read and preprocessed in ``workers`` processes (0: this one).

    Each worker reads whole batches, so the hand-over costs one pickle per batch; batches come back in order.

    The model runs under ``inference_mode``; on CUDA with channels-last inputs, pinned memory and, for ``bf16`` or
    ``fp16``, autocast (logits are returned as float32 either way).

    Raises:
        ModelError: For a batch size below 1, a negative worker count, or reduced precision off CUDA.
    """
    workers = default_workers() if workers is None else workers
    if batch_size < 1 or workers < 0:
        raise ModelError(f"batch_size must be >= 1 and workers >= 0, got {batch_size} and {workers}")
    cuda = classifier.device.type == "cuda"
    if precision != "fp32" and not cuda:
        raise ModelError(f"--precision {precision} needs a CUDA device; on {classifier.device} use fp32")
    loader = DataLoader(
        _Batches(source, batch_size),
        batch_size=None,  # each item is a whole batch already
        num_workers=workers,
        pin_memory=cuda,
        prefetch_factor=2 if workers else None,
    )
    autocast = torch.autocast("cuda", dtype=_DTYPES[precision]) if precision != "fp32" else nullcontext()
    # Module.to takes memory_format (torch's stubs miss it); converting the shared module once is harmless.
    module = classifier.module.to(memory_format=torch.channels_last) if cuda else classifier.module  # type: ignore[call-overload]
    for images, positions, errors, thumbnails in loader:
        readable = [not e for e in errors]
        x = images.to(classifier.device, non_blocking=cuda)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast:
            logits = module(x).float().cpu().numpy() if len(x) else np.empty((0, classifier.num_classes))
        yield EmbeddedBatch(
            positions=positions.numpy()[readable].astype(np.int64),
            logits=np.ascontiguousarray(logits, dtype=np.float32),
            errors=[e for e in errors if e],
            thumbnails=[t or None for t, ok in zip(thumbnails, readable, strict=True) if ok],
        )
