"""Turning the client's Python arguments (numpy arrays, image files, PIL images) into request parts."""

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage
else:  # Pillow loads when an array or a PIL image is encoded: the client needs it for nothing else
    PILImage = Any

#: An image as the client takes it: a file path, the file's bytes, a PIL image, or a uint8 array
#: `(H, W)` grayscale, `(H, W, 3)` RGB or `(H, W, 4)` RGBA.
ImageLike: TypeAlias = str | os.PathLike[str] | bytes | PILImage | np.ndarray
#: Logits: one vector `(C,)` or a batch `(n, C)`, as a numpy array or nested sequences of numbers.
LogitsLike: TypeAlias = np.ndarray | Sequence[float] | Sequence[Sequence[float]]


def logits_matrix(logits: LogitsLike, what: str = "logits", dtype: type = np.float64) -> np.ndarray:
    """`(n, C)` values of `dtype`; a single vector `(C,)` is one row."""
    array: np.ndarray = np.asarray(logits, dtype=dtype)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{what} must be one vector (C,) or a batch (n, C); got shape {array.shape}")
    return array


def logits_rows(logits: LogitsLike, what: str = "logits") -> list[list[float]]:
    """`(n, C)` rows of JSON floats; a single vector `(C,)` is one row.

    float32 values are sent exactly (each widens to float64 without rounding, and JSON carries float64).
    """
    rows: list[list[float]] = logits_matrix(logits, what).tolist()
    return rows


def image_bytes(image: ImageLike) -> tuple[str, bytes, str]:
    """`(file name, encoded bytes, media type)` of an image; arrays and PIL images are encoded as PNG."""
    if isinstance(image, bytes):
        return "image", image, "application/octet-stream"
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        return path.name, path.read_bytes(), "application/octet-stream"
    from PIL import Image

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
            raise ValueError(
                f"an image array must be uint8 (H, W), (H, W, 3) or (H, W, 4); got {image.dtype} {image.shape}"
            )
        image = Image.fromarray(image)
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return "image.png", buffer.getvalue(), "image/png"
    raise TypeError(f"not an image: {type(image).__name__}; pass a path, bytes, a PIL image or a uint8 array")


def image_base64(image: ImageLike) -> str:
    """The base64 text of an image, as the JSON bodies take it."""
    return base64.b64encode(image_bytes(image)[1]).decode("ascii")


def image_files(field: str, images: Sequence[ImageLike]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart `files` of httpx: one part named `field` per image."""
    return [(field, image_bytes(image)) for image in images]


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the keys whose value is None (the server's defaults apply)."""
    return {key: value for key, value in values.items() if value is not None}
