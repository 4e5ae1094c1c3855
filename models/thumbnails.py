"""Thumbnails kept with items added from images: at most 96 px on the longest side, PNG or WebP, size-capped.

The image is turned upright first (its EXIF orientation, `images.upright`).

An image larger than the box is shrunk (antialiased, aspect kept). A smaller one is enlarged by the largest
whole factor that fits, copying pixels (nearest neighbour), so an 8x8 digit becomes a crisp 96x96 picture
rather than a blur. An image that was not shrunk (digits, icons, small scans) is kept as lossless PNG when
that takes at most `PNG_BYTES`; otherwise (photos) it is WebP at the highest quality that fits the cap. An
image that fits in neither gets no thumbnail. Speed matters (ingest makes one per image): a digit takes
~0.06 ms, a 400 px photo ~1.3 ms (PNG's `optimize` and WebP's slower methods cost 10-20x for a few %).
"""

import io
import logging

from PIL import Image

from .images import upright

logger = logging.getLogger(__name__)

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIZE = 96
#: A PNG up to this size is kept as it is; larger ones give way to WebP.
PNG_BYTES = 4096
_WEBP_QUALITIES = (80, 60, 40, 20)
_MEDIA_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"RIFF": "image/webp"}


def fit_thumbnail(image: Image.Image, size: int = THUMBNAIL_SIZE) -> Image.Image:
    """`image` scaled into a `size` x `size` box: shrunk (antialiased), or enlarged by a whole factor."""
    image = _displayable(upright(image))
    longest = max(image.width, image.height)
    if longest > size:
        scale = size / longest
        target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        return image.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)  # box-reduce, then bicubic
    factor = size // longest
    if factor == 1:
        return image.copy()
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def make_thumbnail(image: Image.Image, max_bytes: int, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """The encoded thumbnail of `image` (see the module docstring), or None if none fits `max_bytes`."""
    image = upright(image)
    small = fit_thumbnail(image, size)
    png = _encode(small, "PNG") if max(image.size) <= size else None
    if png is not None and len(png) <= min(PNG_BYTES, max_bytes):
        return png
    for quality in _WEBP_QUALITIES:
        webp = _encode(small, "WEBP", quality=quality, method=2)
        if len(webp) <= max_bytes:
            return webp if png is None or len(webp) < len(png) else png
    if png is not None and len(png) <= max_bytes:
        return png
    logger.warning("no thumbnail: a %dx%d image encodes to more than %d bytes", *small.size, max_bytes)
    return None


def thumbnail_media_type(data: bytes) -> str:
    """`image/png` or `image/webp`, from the encoded bytes' signature."""
    for signature, media_type in _MEDIA_TYPES.items():
        if data.startswith(signature):
            return media_type
    return "application/octet-stream"


def _displayable(image: Image.Image) -> Image.Image:
    """An 8-bit mode both encoders take: L, LA, RGB or RGBA (palette images keep their transparency)."""
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    if image.mode in ("1", "P", "CMYK", "YCbCr", "LAB", "HSV"):
        return image.convert("RGB" if image.mode != "1" else "L")
    return image.convert("RGBA" if "A" in image.mode else "RGB")


def _encode(image: Image.Image, format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()
