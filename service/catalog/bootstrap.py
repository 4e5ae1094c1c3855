"""Loading models (training the embedded default on first use) and filling indexes with images."""

import importlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from indexes.errors import ItemNotFoundError
from indexes.ownership import OwnerLock
from indexes.store import Item, VectorStore
from indexes.validation import MAX_THUMBNAIL_BYTES
from models import (
    FASHION_LABELS,
    Classifier,
    ImageDecodeError,
    ModelError,
    ModelNotFoundError,
    array_to_image,
    load_classifier,
    load_digit_images,
    load_fashion_images,
    make_thumbnail,
    model_exists,
)
from models.device import resolve_device
from models.loader import EmbeddedBatch, ImageFiles, ImageSource, PixelArrays, Precision, embed_dataset
from models.zoo import ZOO

from ..config import DEFAULT_MODEL, Settings
from ..logs import quiet_loggers

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


def import_plugins(names: list[str]) -> None:
    """Import the modules named in `LOGITSEARCH_PLUGINS`, e.g. ones whose `@register_model` adds architectures.

    They are looked up on `sys.path` and in the working directory, as `python -m` would (the `logitsearch`
    script alone does not put the working directory on `sys.path`).
    """
    cwd = os.getcwd()
    if names and cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(
                f"cannot import plugin module {name!r} (LOGITSEARCH_PLUGINS): {exc}; run from the folder that "
                f"holds {name.replace('.', '/')}.py or put that folder on PYTHONPATH"
            ) from exc
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
    """The classifier `settings.model`, loaded (the embedded default is trained by `firststart`, not here)."""
    import_plugins(settings.plugins)
    device = resolve_device(settings.device)
    if not model_exists(settings.models_dir, settings.model):
        if settings.model in ZOO:
            raise ModelNotFoundError(
                f"model {settings.model!r} is not installed in {settings.models_dir}; install it with "
                f"`logitsearch models install {settings.model}` (extra `zoo`)"
            )
        if settings.model == DEFAULT_MODEL:
            raise ModelNotFoundError(
                f"the embedded default model {settings.model!r} is not in {settings.models_dir}: `logitsearch serve` "
                "trains it at its first start (a few seconds), as does `logitsearch train`"
            )
        raise ModelNotFoundError(
            f"no model {settings.model!r} in {settings.models_dir}; train it with "
            f"`logitsearch train --name {settings.model}` or copy its .safetensors and .json there"
        )
    return load_classifier(settings.models_dir, settings.model, device)


def _batches(n: int, batch_size: int, progress: bool, desc: str) -> Iterator[slice]:
    with tqdm(total=n, desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield slice(start, stop)
            bar.update(stop - start)


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
    kept = [make_thumbnail(image, MAX_THUMBNAIL_BYTES) for image in images] if thumbnails else None
    index.upsert(ids, logits, metadata, kept)
    logger.info("indexed %d digits into %r in %.1f s", len(ids), index.name, time.perf_counter() - start)
    return len(ids)


def backfill_digit_thumbnails(index: VectorStore, classifier: Classifier) -> int:
    """Give the digits of a default index built before thumbnails existed their thumbnails; returns how many.

    Only a digit that is still as built gets one: its metadata unchanged and its logits those of the model
    (within 1e-4); a digit a user replaced or deleted is left alone. Costs a dictionary lookup per digit
    when there is nothing to do.
    """
    digits = load_digit_images()
    todo: list[tuple[int, Item]] = []
    for i in range(len(digits.images)):
        try:
            if index.thumbnail(f"digits-{i}") is None:
                todo.append((i, index.get(f"digits-{i}")))
        except ItemNotFoundError:
            continue
    if not todo:
        return 0
    images = [array_to_image(digits.images[i]) for i, _ in todo]
    logits = classifier.logits_from_images(images)
    keep = [
        row
        for row, (i, item) in enumerate(todo)
        if item.metadata == {"label": int(digits.labels[i]), "split": str(digits.split[i])}
        and np.allclose(item.logits, logits[row], rtol=0, atol=1e-4)
    ]
    if keep:
        items = [todo[row][1] for row in keep]
        thumbnails = [make_thumbnail(images[row], MAX_THUMBNAIL_BYTES) for row in keep]
        index.upsert(
            [it.id for it in items], np.stack([it.logits for it in items]), [it.metadata for it in items], thumbnails
        )
    logger.info("index %r: added thumbnails to %d digits built before thumbnails existed", index.name, len(keep))
    return len(keep)


@dataclass(frozen=True)
class IngestOptions:
    """How `logitsearch index` embeds: images per forward pass, decoding processes, device precision, where."""

    batch_size: int = 256
    workers: int | None = None  # None: `default_workers()`
    precision: Precision = "fp32"
    thumbnails: bool = True  # keep each image's thumbnail with its item (the index's switch)
    dask: str | None = None  # a Dask scheduler's address or `local:N` (`models.cluster`); None: this process

    @property
    def thumbnail_bytes(self) -> int | None:
        return MAX_THUMBNAIL_BYTES if self.thumbnails else None


def add_fashion(
    index: VectorStore,
    classifier: Classifier,
    limit: int | None = None,
    options: IngestOptions | None = None,
    progress: bool = False,
) -> int:
    """Index Fashion-MNIST as `fashion-<split>-<i>` with `{"label", "label_name", "split"}`, resuming.

    Each photo goes through the uploaded-image path (uint8 pixels -> image -> the model's preprocessing).
    Batches are committed one at a time and ids already stored are skipped, so an interrupted run continues
    where it stopped. Returns how many items were added.
    """
    fashion = load_fashion_images(limit=limit)
    ids = [f"fashion-{split}-{i}" for split, i in zip(fashion.split, fashion.index, strict=True)]

    def metadata(row: int) -> dict[str, Any]:
        label = int(fashion.labels[row])
        return {"label": label, "label_name": FASHION_LABELS[label], "split": str(fashion.split[row])}

    todo = _missing(index, ids)
    options = options or IngestOptions()
    dataset = PixelArrays(fashion.images[todo], classifier.spec, options.thumbnail_bytes)
    added, _ = _ingest(
        index, classifier, dataset, [ids[r] for r in todo], [metadata(r) for r in todo], options, progress
    )
    return added


def add_image_folder(
    index: VectorStore,
    classifier: Classifier,
    folder: Path,
    settings: Settings,
    options: IngestOptions | None = None,
    progress: bool = False,
) -> int:
    """Index every image under `folder`: id = relative path, metadata `{"path", "label": <sub-folder>}`, resuming.

    The label is the first sub-folder's name, as a number when it is one (`folder_label`).

    Files are decoded and preprocessed in worker processes while the model embeds earlier batches; each batch
    is committed as it comes and ids already stored are skipped, so a second run continues an interrupted one.
    Unreadable files are skipped with a warning each and reported at the end (`ImageDecodeError`, naming
    them) after everything readable was stored. Returns how many items were added.
    """
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise ModelNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    relative = [p.relative_to(folder).as_posix() for p in paths]
    todo = _missing(index, relative)
    options = options or IngestOptions()
    dataset = ImageFiles(
        [paths[r] for r in todo],
        classifier.spec,
        settings.max_image_bytes,
        settings.max_image_pixels,
        options.thumbnail_bytes,
    )
    metadata = [
        {"path": relative[r], **({"label": folder_label(relative[r].split("/")[0])} if "/" in relative[r] else {})}
        for r in todo
    ]
    added, errors = _ingest(index, classifier, dataset, [relative[r] for r in todo], metadata, options, progress)
    if errors:
        shown = "; ".join(errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        raise ImageDecodeError(
            f"{len(errors)} of {len(paths)} files under {folder} are not readable images and were skipped "
            f"({shown}); fix or remove them and run again: the {added} stored now are kept and skipped then"
        )
    return added


def _missing(index: VectorStore, ids: list[str]) -> list[int]:
    """Positions of the ids not stored yet (all of them in a new index)."""
    todo = (
        list(range(len(ids))) if index.count() == 0 else [i for i, item in enumerate(ids) if not _stored(index, item)]
    )
    if len(todo) < len(ids):
        logger.info(
            "index %r holds %d of the %d items already; adding the rest", index.name, len(ids) - len(todo), len(ids)
        )
    return todo


def _ingest(
    index: VectorStore,
    classifier: Classifier,
    dataset: ImageSource,
    ids: list[str],
    metadata: list[dict[str, Any]],
    options: IngestOptions | None,
    progress: bool,
) -> tuple[int, list[str]]:
    """Embed `dataset` (row i is `ids[i]`) and upsert it batch by batch; returns (items added, unreadable files)."""
    options = options or IngestOptions()
    start, added, errors = time.perf_counter(), 0, list[str]()
    where = f" on dask {options.dask}" if options.dask else ""
    with (
        _embedded(classifier, dataset, options) as batches,
        tqdm(total=len(ids), desc=f"embedding into {index.name}{where}", unit="img", disable=not progress) as bar,
    ):
        for batch in batches:
            rows = batch.positions.tolist()
            if rows:
                thumbnails = batch.thumbnails if options.thumbnails else None
                index.upsert([ids[r] for r in rows], batch.logits, [metadata[r] for r in rows], thumbnails)
            for error in batch.errors:
                logger.warning("skipped %s", error)
            added, errors = added + len(rows), errors + batch.errors
            bar.update(len(rows) + len(batch.errors))
    elapsed = time.perf_counter() - start
    logger.info(
        "indexed %d items into %r in %.1f s (%.0f images/s)", added, index.name, elapsed, added / max(elapsed, 1e-9)
    )
    return added, errors


@contextmanager
def _embedded(
    classifier: Classifier, dataset: ImageSource, options: IngestOptions
) -> Iterator[Iterator[EmbeddedBatch]]:
    """The batches of `dataset`'s logits: embedded here, or on the Dask cluster of `options.dask` (any order)."""
    if options.dask is None:
        yield embed_dataset(classifier, dataset, options.batch_size, options.workers, options.precision)
        return
    try:
        from models.cluster import dask_client, embed_on_cluster
    except ImportError as exc:
        if exc.name not in ("dask", "distributed"):
            raise
        raise ModelError("--dask needs the `distributed` package: pip install 'logit-search[dask]'") from exc
    quiet_loggers()  # importing distributed set its loggers to INFO
    with dask_client(options.dask) as client:
        yield embed_on_cluster(client, classifier, dataset, options.batch_size, options.precision)


def _stored(index: VectorStore, item_id: str) -> bool:
    try:
        index.get(item_id)
    except ItemNotFoundError:
        return False
    return True


def folder_label(name: str) -> int | str:
    """The `label` of the images in sub-folder `name`: a number when the name is one (`"7"` -> 7, as the digits'
    and Fashion-MNIST's labels are), else the name (`"cats"`, and `"07"`, which is not how a number is written).
    """
    return int(name) if name.isascii() and name.isdigit() and str(int(name)) == name else name
