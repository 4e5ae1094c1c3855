"""EXIF orientation: a photo stored sideways with an Orientation tag is read, predicted and thumbnailed upright."""

import io

import numpy as np
import pytest
from PIL import Image

from models import array_to_image, decode_image, load_digit_images, make_thumbnail
from models.images import preprocess
from models.spec import ModelSpec
from models.thumbnails import fit_thumbnail

ORIENTATION = 0x0112
#: EXIF orientation -> how the stored pixels were turned from the upright scene (exif_transpose undoes it).
STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _upright() -> Image.Image:
    """A digit, enlarged and made wider than tall so that a turn shows in the size too."""
    digit = array_to_image(load_digit_images().images[7]).resize((32, 32), Image.Resampling.NEAREST)
    canvas = Image.new("L", (48, 32))
    canvas.paste(digit, (0, 0))
    return canvas


def _tagged(upright: Image.Image, orientation: int, format: str) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    buffer = io.BytesIO()
    upright.transpose(STORED[orientation]).save(buffer, format=format, exif=exif)
    return buffer.getvalue()


def _decode(data: bytes) -> Image.Image:
    return decode_image(data, max_bytes=1 << 20, max_pixels=1 << 20)


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_decode_image_applies_exif_orientation_png(orientation: int) -> None:
    upright = _upright()
    decoded = _decode(_tagged(upright, orientation, "PNG"))
    assert decoded.size == upright.size
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(upright))
    assert decoded.getexif().get(ORIENTATION, 1) == 1


def test_decode_image_applies_exif_orientation_jpeg() -> None:
    upright = _upright()
    decoded = np.asarray(_decode(_tagged(upright, 6, "JPEG")), dtype=np.float32)
    assert decoded.shape == (32, 48)
    sideways = np.asarray(upright.transpose(Image.Transpose.ROTATE_180), dtype=np.float32)
    assert np.abs(decoded - np.asarray(upright)).mean() < 4.0 < np.abs(decoded - sideways).mean()


def test_preprocess_and_thumbnail_apply_exif_orientation() -> None:
    """Images opened elsewhere (not through decode_image) are turned upright too."""
    upright = _upright()
    opened = Image.open(io.BytesIO(_tagged(upright, 8, "PNG")))
    spec = ModelSpec("t", "tiny_cnn", 10, tuple("0123456789"), input_size=(32, 48), channels=1, mean=(0.5,), std=(0.5,))
    np.testing.assert_array_equal(preprocess([opened], spec).numpy(), preprocess([upright], spec).numpy())
    assert fit_thumbnail(opened).size == fit_thumbnail(upright).size == (96, 64)
    thumbnail = Image.open(io.BytesIO(make_thumbnail(opened, 16_384) or b""))
    np.testing.assert_array_equal(np.asarray(thumbnail), np.asarray(fit_thumbnail(upright)))


@pytest.mark.parametrize("format", ["PNG", "JPEG"])
def test_decode_image_applies_exif_orientation_of_a_large_image(format: str) -> None:
    """Images shrunk on decode (models.images.WORKING_SIDE) keep their orientation."""
    upright = _upright().resize((3 * 1024, 2 * 1024), Image.Resampling.NEAREST)
    decoded = _decode_large(_tagged(upright, 6, format))
    assert decoded.width > decoded.height


def _decode_large(data: bytes) -> Image.Image:
    return decode_image(data, max_bytes=1 << 24, max_pixels=1 << 24)
