"""Loading models (training the embedded default on first use) and filling indexes with images."""

import importlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from indexes.errors import ItemNotFoundError
from indexes.ownership import OwnerLock
from indexes.store import VectorStore
from indexes.validation import MAX_THUMBNAIL_BYTES
from models import (
    FASHION_LABELS,
    Classifier,
    ImageError,
    ModelError,
    ModelNotFoundError,
    TrainConfig,
    array_to_image,
    decode_image,
    load_classifier,
    load_digit_images,
    load_fashion_images,
    make_thumbnail,
    model_exists,
    train_classifier,
)
from models.device import resolve_device

from .config import DEFAULT_MODEL, Settings

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


def import_plugins(names: list[str]) -> None:
    """Import the modules named in `LOGITSEARCH_PLUGINS`, e.g. ones whose `@register_model` adds architectures."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(f"cannot import plugin module {name!r} (LOGITSEARCH_PLUGINS): {exc}") from exc
        logger.info("imported plugin module %r", name)


@contextmanager
def training_lock(models_dir: Path, name: str) -> Iterator[None]:
    """Own the model `name` while it is trained into `models_dir`: a second trainer is refused, naming the first."""
    models_dir.mkdir(parents=True, exist_ok=True)
    owner = OwnerLock(models_dir / f".{name}.lock", f"model {name!r} in {models_dir} (being trained)")
    try:
        yield
    finally:
        owner.release()


def load_model(settings: Settings, progress: bool = False) -> Classifier:
    """The classifier `settings.model`; the embedded default is trained on first use."""
    import_plugins(settings.plugins)
    device = resolve_device(settings.device)
    if not model_exists(settings.models_dir, settings.model):
        if settings.model != DEFAULT_MODEL:
            raise ModelNotFoundError(
                f"no model {settings.model!r} in {settings.models_dir}; train it with "
                f"`logitsearch train --name {settings.model}` or copy its .safetensors and .json there"
            )
        logger.info(
            "model %r not found in %s: training it on scikit-learn's digits", settings.model, settings.models_dir
        )
        with training_lock(settings.models_dir, settings.model):
            if model_exists(settings.models_dir, settings.model):  # another process trained it meanwhile
                return load_classifier(settings.models_dir, settings.model, device)
            return train_classifier(
                TrainConfig(name=settings.model), settings.models_dir, device=device, progress=progress
            )
    return load_classifier(settings.models_dir, settings.model, device)


def _batches(n: int, batch_size: int, progress: bool, desc: str) -> Iterator[slice]:
    with tqdm(total=n, desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield slice(start, stop)
            bar.update(stop - start)


def thumbnails_of(images: list[Image.Image], keep: bool) -> list[bytes | None] | None:
    """The thumbnail of each image when the index keeps them (`keep`), else None."""
    return [make_thumbnail(image, MAX_THUMBNAIL_BYTES) for image in images] if keep else None


def add_digits(index: VectorStore, classifier: Classifier, progress: bool = False, thumbnails: bool = True) -> int:
    """Index all 1797 digits as `digits-<i>` with `{"label", "split"}`, through the uploaded-image path.

    Each digit becomes an 8-bit grayscale image and is embedded exactly as a PNG upload of it would be, so
    searching with that PNG finds the item at distance 0. One upsert: the index gets all of them or none.
    With `thumbnails`, each keeps its 8x8 pixels enlarged 12 times without blurring (a 96 px PNG).
    """
    start = time.perf_counter()
    digits = load_digit_images()
    images = [array_to_image(pixels) for pixels in digits.images]
    logits = np.concatenate(
        [classifier.logits_from_images(images[s]) for s in _batches(len(images), 256, progress, "embedding digits")]
    )
    ids = [f"digits-{i}" for i in range(len(images))]
    metadata = [
        {"label": int(label), "split": str(split)} for label, split in zip(digits.labels, digits.split, strict=True)
    ]
    index.upsert(ids, logits, metadata, thumbnails_of(images, thumbnails))
    logger.info("indexed %d digits into %r in %.1f s", len(ids), index.name, time.perf_counter() - start)
    return len(ids)


def add_fashion(
    index: VectorStore,
    classifier: Classifier,
    limit: int | None = None,
    batch_size: int = 1024,
    progress: bool = False,
    thumbnails: bool = True,
) -> int:
    """Index Fashion-MNIST as `fashion-<split>-<i>` with `{"label", "label_name", "split"}`, resuming.

    Each photo goes through the uploaded-image path (uint8 pixels -> image -> the model's preprocessing).
    Batches are committed one at a time and ids already stored are skipped, so an interrupted run continues
    where it stopped. Returns how many items were added.
    """
    start = time.perf_counter()
    fashion = load_fashion_images(limit=limit)
    ids = [f"fashion-{split}-{i}" for split, i in zip(fashion.split, fashion.index, strict=True)]
    todo = [row for row, item_id in enumerate(ids) if not _stored(index, item_id)]
    if len(todo) < len(ids):
        logger.info(
            "index %r holds %d of the %d photos already; adding the rest", index.name, len(ids) - len(todo), len(ids)
        )
    for batch in _batches(len(todo), batch_size, progress, "embedding fashion-mnist"):
        rows = todo[batch]
        images = [Image.fromarray(fashion.images[row], mode="L") for row in rows]
        metadata = [
            {
                "label": int(fashion.labels[row]),
                "label_name": FASHION_LABELS[fashion.labels[row]],
                "split": str(fashion.split[row]),
            }
            for row in rows
        ]
        logits = classifier.logits_from_images(images)
        index.upsert([ids[row] for row in rows], logits, metadata, thumbnails_of(images, thumbnails))
    logger.info("indexed %d fashion-mnist photos into %r in %.1f s", len(todo), index.name, time.perf_counter() - start)
    return len(todo)


def _stored(index: VectorStore, item_id: str) -> bool:
    try:
        index.get(item_id)
    except ItemNotFoundError:
        return False
    return True


def _read_image(path: Path, settings: Settings) -> Image.Image:
    try:
        return decode_image(path.read_bytes(), max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise type(exc)(f"{path}: {exc}") from exc


def add_image_folder(
    index: VectorStore,
    classifier: Classifier,
    folder: Path,
    settings: Settings,
    progress: bool = False,
    thumbnails: bool = True,
) -> int:
    """Index every image under `folder`: id = relative path, metadata `{"path", "label": <sub-folder>}`.

    With `thumbnails`, each item keeps a thumbnail of its image.

    Images are committed in batches of `max_batch`; a file that is not a readable image stops the run
    with an error naming it, after the batches before it were stored.
    """
    start = time.perf_counter()
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ModelNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    for batch in _batches(len(paths), settings.max_batch, progress, f"indexing {folder}"):
        chunk = paths[batch]
        images = [_read_image(p, settings) for p in chunk]
        relative = [p.relative_to(folder).as_posix() for p in chunk]
        metadata = [{"path": r, **({"label": r.split("/")[0]} if "/" in r else {})} for r in relative]
        index.upsert(relative, classifier.logits_from_images(images), metadata, thumbnails_of(images, thumbnails))
    logger.info(
        "indexed %d images from %s into %r in %.1f s", len(paths), folder, index.name, time.perf_counter() - start
    )
    return len(paths)
