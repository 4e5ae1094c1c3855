"""Turning request inputs (logits, base64 images, stored ids) into logit vectors, within the limits."""

import base64
import binascii
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from PIL import Image

from indexes.deadline import check_deadline
from indexes.store import VectorStore
from indexes.validation import MAX_THUMBNAIL_BYTES, check_vectors
from models import Classifier, ImageDecodeError, ImageError, decode_image, make_thumbnail, preprocess

from .. import schemas
from ..config import Settings
from ..errors import InvalidVectorsError, LimitExceededError
from ..schemas import ItemIn, Query


def check_batch(size: int, settings: Settings, what: str) -> None:
    """Refuse requests with more than `max_batch` queries, items or images."""
    if size > settings.max_batch:
        raise LimitExceededError(
            f"{size} {what} in one request; at most {settings.max_batch} (LOGITSEARCH_MAX_BATCH): split the request"
        )


def check_max_k(k: int, settings: Settings) -> None:
    """Refuse `k` above `max_k`."""
    if k > settings.max_k:
        raise LimitExceededError(f"k = {k} is above the limit of {settings.max_k} (LOGITSEARCH_MAX_K)")


def decode_base64(text: str, where: str) -> bytes:
    """Bytes of a base64 string; a `data:<mime>;base64,` prefix and line breaks (as `base64` wraps) are accepted."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"{where} is not valid base64 ({exc}); encode the file's bytes with base64") from exc


@lru_cache
def decode_slots(count: int) -> threading.BoundedSemaphore:
    """The semaphore that lets `count` images decode at once in this process."""
    return threading.BoundedSemaphore(count)


def decode_one(item: str | bytes, settings: Settings, where: str) -> Image.Image:
    """Decode one image (base64 text or raw bytes), checked against the size limits.

    At most `settings.max_concurrent_decodes` decode at once, so that decoding holds at most that many times
    4 bytes x `max_image_pixels` (`models.decode_image`), however many requests run.
    """
    data = item if isinstance(item, bytes) else decode_base64(item, where)
    try:
        with decode_slots(settings.max_concurrent_decodes):
            return decode_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    except ImageError as exc:
        raise type(exc)(f"{where}: {exc}") from exc


def decode_vectors(text: str, shape: tuple[int, int], where: str) -> np.ndarray:
    """`schemas.decode_vectors`, its errors as `InvalidVectorsError` (422).

    Returns:
        `(n, C)` float32 (not yet checked for finiteness or the model's C).
    """
    try:
        return schemas.decode_vectors(text, shape, where)
    except ValueError as exc:
        raise InvalidVectorsError(str(exc)) from exc


#: Decoded pixels held at once while embedding a batch: images are decoded, resized to the model's input and
#: dropped chunk by chunk, so a batch of large photos costs one chunk of memory, not the whole batch.
DECODE_PIXEL_BUDGET = 32_000_000


def embed_encoded(
    encoded: Sequence[str | bytes],
    classifier: Classifier,
    settings: Settings,
    where: Sequence[str],
    thumbnails: list[bytes | None] | None = None,
) -> np.ndarray:
    """Logits of encoded images (base64 text or raw bytes), decoded and preprocessed in bounded chunks.

    Args:
        encoded: n images.
        where: n names for messages (e.g. `images[3]`).
        thumbnails: when given, the thumbnail of each image (`models.make_thumbnail`) is appended to it.

    Returns:
        `(n, C)` float32.
    """
    inputs: list[torch.Tensor] = []
    chunk: list[Image.Image] = []
    pixels = 0
    for raw, name in zip(encoded, where, strict=True):
        check_deadline()
        image = decode_one(raw, settings, name)
        if thumbnails is not None:
            thumbnails.append(make_thumbnail(image, MAX_THUMBNAIL_BYTES))
        chunk.append(image)
        pixels += image.width * image.height
        if pixels >= DECODE_PIXEL_BUDGET:
            inputs.append(preprocess(chunk, classifier.spec))
            chunk, pixels = [], 0
    if chunk:
        inputs.append(preprocess(chunk, classifier.spec))
    if not inputs:
        return np.empty((0, classifier.num_classes), dtype=np.float32)
    return classifier.logits_from_tensor(torch.cat(inputs))


def resolve_vectors(
    sources: Sequence[ItemIn | Query],
    classifier: Classifier,
    index: VectorStore,
    settings: Settings,
    where: str,
    thumbnails: list[bytes | None] | None = None,
) -> np.ndarray:
    """The logits of each source: given directly, computed from its image, or read from a stored id.

    Logits given directly are checked as one matrix (a bad row is then found and named); images in the batch
    go through the model together. Raises `ItemNotFoundError` for an unknown id. When `thumbnails` is given,
    one entry per source is appended to it: the image's thumbnail, or None.

    Returns:
        `(n, C)` float64 (logits as sent; stored and embedded ones are float32 values), validated.
    """
    dim = index.dim
    vectors = np.empty((len(sources), dim), dtype=np.float64)  # queries keep their float64 digits
    rows: dict[str, list[int]] = {"logits": [], "logits_b64": [], "image": []}
    for i, source in enumerate(sources):
        for field in rows:
            if getattr(source, field) is not None:
                rows[field].append(i)
        if isinstance(source, Query) and source.id is not None:
            vectors[i] = index.get(source.id).logits
    if rows["logits"]:
        given = [sources[i].logits for i in rows["logits"]]
        vectors[rows["logits"]] = _check_rows(given, rows["logits"], dim, f"{where}[{{}}].logits")
    if rows["logits_b64"]:
        name = f"{where}[{{}}].logits_b64"
        decoded = _decode_rows([sources[i].logits_b64 or "" for i in rows["logits_b64"]], rows["logits_b64"], dim, name)
        vectors[rows["logits_b64"]] = _check_rows(decoded, rows["logits_b64"], dim, name)
    image_rows = rows["image"]
    made: list[bytes | None] | None = [] if thumbnails is not None else None
    if image_rows:
        images = [sources[i].image or "" for i in image_rows]
        names = [f"{where}[{i}].image" for i in image_rows]
        vectors[image_rows] = embed_encoded(images, classifier, settings, names, made)
    if thumbnails is not None and made is not None:
        by_row = dict(zip(image_rows, made, strict=True))
        thumbnails.extend(by_row.get(i) for i in range(len(sources)))
    return vectors


def _decode_rows(texts: list[str], rows: list[int], dim: int, name: str) -> np.ndarray:
    """`(n, dim)` float32 from one `logits_b64` vector per row: decoded together, or one by one (line breaks
    accepted, errors naming the row) when that fails."""
    try:
        data = [base64.b64decode(text, validate=True) for text in texts]
        if all(len(vector) == 4 * dim for vector in data):
            return np.frombuffer(b"".join(data), dtype="<f4").reshape(len(texts), dim)
    except (binascii.Error, ValueError):
        pass
    return np.vstack(
        [
            decode_vectors(text, (1, dim), f"{name.format(row)} (the model has {dim} classes)")
            for row, text in zip(rows, texts, strict=True)
        ]
    )


def _check_rows(given: Sequence[object] | np.ndarray, rows: list[int], dim: int, name: str) -> np.ndarray:
    """`check_vectors` on all rows at once; when that fails, row by row, so that the error names the bad one.

    Args:
        given: one vector per entry of `rows`.
        rows: the positions of the vectors in the request.
        name: the field, with `{}` for the position.
    """
    try:
        return check_vectors(given, dim, name=name.format("*"), dtype=np.float64)
    except ValueError:
        for row, vector in zip(rows, given, strict=True):
            check_vectors(vector, dim, name=name.format(row), dtype=np.float64)
        raise


def check_results(k: int, num_queries: int, settings: Settings) -> None:
    """Refuse searches whose answer could hold more than `max_results` neighbours."""
    if k * num_queries > settings.max_results:
        raise LimitExceededError(
            f"k x queries = {k} x {num_queries} = {k * num_queries} neighbours, above the limit of "
            f"{settings.max_results} per response (LOGITSEARCH_MAX_RESULTS): lower k or split the queries"
        )
