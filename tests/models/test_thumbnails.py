"""Thumbnails: at most 96 px, enlarged without blurring, PNG for small pictures, WebP for photos, capped."""

import io

import numpy as np
import pytest
from PIL import Image

from models import THUMBNAIL_SIZE, load_digit_images, make_thumbnail, thumbnail_media_type
from models.images import array_to_image


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_digit_is_enlarged_twelve_times_pixel_for_pixel() -> None:
    pixels = load_digit_images().images[5]
    data = make_thumbnail(array_to_image(pixels), max_bytes=16384)
    assert data is not None and thumbnail_media_type(data) == "image/png"
    image = _decode(data)
    assert image.size == (96, 96) and np.array_equal(np.asarray(image), np.kron(pixels, np.ones((12, 12), np.uint8)))


@pytest.mark.parametrize(("size", "expected"), [((640, 480), (96, 72)), ((100, 1000), (10, 96)), ((50, 20), (50, 20))])
def test_the_longest_side_fits_the_box(
    rng: np.random.Generator, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    photo = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    data = make_thumbnail(photo, max_bytes=16384)
    assert data is not None and _decode(data).size == expected and max(expected) <= THUMBNAIL_SIZE


def test_a_photo_becomes_a_webp_under_the_cap(rng: np.random.Generator) -> None:
    noise = Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))
    data = make_thumbnail(noise, max_bytes=16384)
    assert data is not None and thumbnail_media_type(data) == "image/webp" and len(data) <= 16384
    assert _decode(data).size == (96, 96)
    assert make_thumbnail(noise, max_bytes=50) is None  # nothing fits: no thumbnail rather than a broken one


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "1", "CMYK", "I;16"])
def test_every_decoded_mode_gives_a_thumbnail(mode: str) -> None:
    image = Image.new("RGB", (20, 10), (200, 30, 90)).convert(mode)
    data = make_thumbnail(image, max_bytes=16384)
    assert data is not None and _decode(data).size == (80, 40)
