"""Tests for models/images.py: decoding untrusted bytes and preprocessing to model inputs."""

import dataclasses
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from models import (
    ImageDecodeError,
    ImageTooLargeError,
    ModelSpec,
    array_to_image,
    decode_image,
    load_digit_images,
    preprocess,
)

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A valid tiny PNG whose IHDR is patched to declare ``width x height`` (CRC fixed)."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    # Signature (8) + chunk length (4) + b"IHDR" (4): width and height follow, then the chunk CRC.
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def normalised(values: np.ndarray, spec: ModelSpec) -> torch.Tensor:
    array = (values.astype(np.float32) / np.float32(255.0) - np.float32(spec.mean[0])) / np.float32(spec.std[0])
    return torch.from_numpy(array)


def test_preprocess_digit_png_equals_array_path(tiny_spec: ModelSpec) -> None:
    pixels = load_digit_images().images[5]
    decoded = decode_image(encode(array_to_image(pixels)), **LIMITS)
    from_png = preprocess([decoded], tiny_spec)
    assert from_png.shape == (1, 1, 8, 8) and from_png.dtype == torch.float32
    assert torch.equal(from_png, preprocess([array_to_image(pixels)], tiny_spec))
    torch.testing.assert_close(from_png[0, 0], normalised(pixels, tiny_spec), rtol=0, atol=1e-6)


def test_preprocess_resizes_larger_image(tiny_spec: ModelSpec, rng: np.random.Generator) -> None:
    big = rng.integers(0, 256, size=(40, 32), dtype=np.uint8)
    assert preprocess([array_to_image(big)], tiny_spec).shape == (1, 1, 8, 8)
    flat = array_to_image(np.full((64, 48), 200, dtype=np.uint8))
    torch.testing.assert_close(preprocess([flat], tiny_spec)[0, 0], normalised(np.full((8, 8), 200), tiny_spec))


def test_preprocess_rgb_to_one_channel(tiny_spec: ModelSpec, rng: np.random.Generator) -> None:
    gray = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
    rgb = array_to_image(np.repeat(gray[:, :, None], 3, axis=2))
    assert rgb.mode == "RGB"
    assert torch.equal(preprocess([rgb], tiny_spec), preprocess([array_to_image(gray)], tiny_spec))


def test_preprocess_gray_to_three_channels(tiny_spec: ModelSpec) -> None:
    spec = ModelSpec(**{**tiny_spec.__dict__, "channels": 3, "mean": (0.5,) * 3, "std": (0.25,) * 3})
    out = preprocess([array_to_image(np.full((8, 8), 255, dtype=np.uint8))] * 2, spec)
    assert out.shape == (2, 3, 8, 8)
    torch.testing.assert_close(out, torch.full((2, 3, 8, 8), 2.0))


def test_preprocess_composites_alpha_over_black(tiny_spec: ModelSpec) -> None:
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[:4, :, 3] = 255  # top half opaque white, bottom half transparent white
    out = preprocess([Image.fromarray(rgba)], tiny_spec)[0, 0]
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[:4] = 255
    torch.testing.assert_close(out, normalised(expected, tiny_spec))


def test_preprocess_empty_batch(tiny_spec: ModelSpec) -> None:
    assert preprocess([], tiny_spec).shape == (0, 1, 8, 8)


def test_array_to_image_modes_and_errors() -> None:
    assert array_to_image(np.zeros((4, 5), dtype=np.uint8)).mode == "L"
    assert array_to_image(np.zeros((4, 5, 3), dtype=np.uint8)).size == (5, 4)
    with pytest.raises(ImageDecodeError):
        array_to_image(np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(ImageDecodeError):
        array_to_image(np.zeros((4, 5, 4), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_decode_image_accepted_formats(fmt: str) -> None:
    image = decode_image(encode(Image.new("RGB", (10, 6), (40, 80, 120)), fmt), **LIMITS)
    assert image.size == (10, 6)


@pytest.mark.parametrize("data", [b"", b"hello, world", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n"])
def test_decode_image_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageDecodeError, match="PNG, JPEG, WebP, BMP or GIF"):
        decode_image(data, **LIMITS)


def test_decode_image_unsupported_format_tiff() -> None:
    with pytest.raises(ImageDecodeError, match="not a supported image"):
        decode_image(encode(Image.new("L", (8, 8)), "TIFF"), **LIMITS)


def test_decode_image_truncated_png(rng: np.random.Generator) -> None:
    data = encode(array_to_image(rng.integers(0, 256, size=(64, 64), dtype=np.uint8)))
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_decode_image_over_max_bytes_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(b"x" * 101, max_bytes=100, max_pixels=10**6)


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (5_000, 5_000)])
def test_decode_image_bomb_refused_without_loading(width: int, height: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_load(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail_load)
    with pytest.raises(ImageTooLargeError):
        decode_image(png_with_declared_size(width, height), **LIMITS)


def test_decode_image_compressible_large_png_over_max_pixels() -> None:
    data = encode(Image.new("L", (2000, 1000)))
    assert len(data) < LIMITS["max_bytes"]
    with pytest.raises(ImageTooLargeError, match="2000x1000"):
        decode_image(data, **LIMITS)


def test_decode_image_gif_first_frame() -> None:
    frames = [Image.new("L", (8, 8), value) for value in (200, 50, 120)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decode_image(data, **LIMITS)
    assert np.asarray(image.convert("L")).tolist() == [[200] * 8] * 8


def test_decode_image_16bit_png_scaled_to_8bit(tiny_spec: ModelSpec) -> None:
    levels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4
    image16 = Image.fromarray(levels * 257)
    assert image16.mode == "I;16"
    decoded = decode_image(encode(image16), **LIMITS)
    assert decoded.mode == "L"
    np.testing.assert_array_equal(np.asarray(decoded), levels.astype(np.uint8))
    expected = preprocess([array_to_image(levels.astype(np.uint8))], tiny_spec)
    assert torch.equal(preprocess([image16], tiny_spec), expected)


def test_decode_image_float_mode_refused() -> None:
    from models.images import to_8bit

    with pytest.raises(ImageDecodeError, match="floating-point"):
        to_8bit(Image.new("F", (2, 2)))


def _crop_spec(tiny_spec: ModelSpec, size: tuple[int, int], crop_pct: float | None, **kwargs: object) -> ModelSpec:
    fields = {"input_size": size, "channels": 3, "mean": (0.0,) * 3, "std": (1.0,) * 3, "crop_pct": crop_pct}
    return dataclasses.replace(tiny_spec, **fields, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_preprocess_crop_keeps_the_centre_at_scale_one(
    tiny_spec: ModelSpec, rng: np.random.Generator, interpolation: str
) -> None:
    """Input 28x28 at crop_pct 0.875 covers 32x32: a 64x32 (w x h) image is not rescaled, only cropped."""
    spec = _crop_spec(tiny_spec, (28, 28), 0.875, interpolation=interpolation)
    pixels = rng.integers(0, 256, size=(32, 64, 3), dtype=np.uint8)
    got = preprocess([array_to_image(pixels)], spec)[0].permute(1, 2, 0).numpy() * 255
    np.testing.assert_allclose(got, pixels[2:30, 18:46], atol=1e-3)


def test_preprocess_crop_keeps_aspect_where_stretching_would_not(tiny_spec: ModelSpec) -> None:
    """A wide image with a white square in the middle: the crop keeps it square, a plain resize squeezes it."""
    pixels = np.zeros((100, 300, 3), dtype=np.uint8)
    pixels[25:75, 125:175] = 255
    cropped = preprocess([array_to_image(pixels)], _crop_spec(tiny_spec, (20, 20), 1.0))[0, 0].numpy()
    stretched = preprocess([array_to_image(pixels)], _crop_spec(tiny_spec, (20, 20), None))[0, 0]
    white = cropped > 0.5
    rows, cols = np.flatnonzero(white.any(1)), np.flatnonzero(white.any(0))
    assert (rows[0], rows[-1], cols[0], cols[-1]) == (5, 14, 5, 14)
    assert (stretched.numpy() > 0.5).any(0).sum() < 5


def test_preprocess_crop_upscales_small_images(tiny_spec: ModelSpec) -> None:
    spec = _crop_spec(tiny_spec, (224, 224), 0.875)
    flat = array_to_image(np.full((28, 28, 3), 90, dtype=np.uint8))
    out = preprocess([flat], spec)
    assert out.shape == (1, 3, 224, 224)
    torch.testing.assert_close(out, torch.full_like(out, 90 / 255), rtol=0, atol=1e-6)
