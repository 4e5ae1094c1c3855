"""Image decoding (with size limits) and preprocessing to model inputs, shared by training and serving.

Mode handling, applied the same way to uploads and training images:

- 16-bit grayscale ("I;16", "I;16B", "I;16L", and "I" with values in [0, 65535]) is scaled to 8-bit as
  ``round(v / 257)`` (so 65535 -> 255); "I" outside that range and float ("F") images are refused.
- An EXIF Orientation tag (phone photos stored sideways) is applied first, with Pillow's `exif_transpose`,
  so the model and the thumbnail see the picture upright.
- Images with transparency (RGBA, LA, PA, palette with a transparent colour) are composited over black, the
  background of the digits data, then converted to the model's mode ("L" or "RGB", ITU-R 601-2 luma for "L").
"""

import io
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageDecodeError, ImageTooLargeError
from .spec import ModelSpec

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
_ACCEPTED_TEXT = "PNG, JPEG, WebP, BMP or GIF (first frame)"
_RESAMPLING = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
#: Decoded images are brought down to at most twice this on their longest side right after decoding (JPEG:
#: decoded at a reduced scale in the first place), so that only the decoder's own buffer is full size: decoding a
#: W x H image costs about W x H x 4 bytes once (less for JPEG), never a full-size copy per conversion. Models
#: take at most a few hundred pixels and thumbnails 96.
WORKING_SIDE = 1024
#: Modes `Image.reduce` refuses; these are shrunk by nearest neighbour instead.
_NO_REDUCE_MODES = ("1", "P", "I;16", "I;16B", "I;16L", "I;16N")
# Errors PIL's decoders raise on corrupt or truncated input.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error)


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Decode untrusted image bytes, enforcing limits before any pixel is decoded.

    Args:
        data: Encoded image (PNG, JPEG, WebP, BMP or GIF; only the first frame of animations is used).
        max_bytes: Largest accepted ``len(data)``; checked before decoding.
        max_pixels: Largest accepted ``width * height``; checked from the header before loading pixels.

    Returns:
        The loaded first frame, upright (EXIF orientation applied), at most `2 * WORKING_SIDE` on its longest side
        when it was larger than `WORKING_SIDE` (JPEG: decoded in draft mode at the smallest scale that keeps
        `WORKING_SIDE`; others: `Image.reduce` by a whole factor); 16-bit grayscale is converted to 8-bit "L"
        (see module docstring). The memory this takes at its peak is about width x height x 4 bytes.

    Raises:
        ImageTooLargeError: Over ``max_bytes`` or ``max_pixels`` (or PIL's own decompression-bomb limit).
        ImageDecodeError: Empty, not an image, truncated or corrupt, unsupported format, or unsupported mode.
    """
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data:
        raise ImageDecodeError(f"image is empty; send {_ACCEPTED_TEXT} bytes")
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # The warning is only raised when the caller's warning filters make it an error; we do not change
        # filters here because they are process-global and requests run in a thread pool.
        raise ImageTooLargeError(f"image is too large to decode safely: {e}") from e
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"not a supported image; send {_ACCEPTED_TEXT}") from e
    except _DECODE_ERRORS as e:
        raise ImageDecodeError(f"cannot read image header ({e}); send {_ACCEPTED_TEXT}") from e
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    try:
        if image.format == "JPEG" and max(width, height) > WORKING_SIDE:
            image.draft(image.mode, (WORKING_SIDE, WORKING_SIDE))
        image.load()
    except _DECODE_ERRORS as e:
        raise ImageDecodeError(f"cannot decode {image.format} image, it may be truncated or corrupt ({e})") from e
    return to_8bit(upright(_reduced(image)))


def _reduced(image: Image.Image) -> Image.Image:
    """`image` shrunk by the largest whole factor that keeps `WORKING_SIDE` on its longest side (EXIF kept)."""
    factor = max(image.size) // WORKING_SIDE
    if factor < 2:
        return image
    exif = image.getexif()
    if image.mode in _NO_REDUCE_MODES:
        size = (max(1, image.width // factor), max(1, image.height // factor))
        small = image.resize(size, Image.Resampling.NEAREST)
    else:
        small = image.reduce(factor)
    small.info["exif"] = exif.tobytes()
    return small


#: The EXIF tag that says how stored pixels are turned from the scene.
_ORIENTATION = 0x0112


def upright(image: Image.Image) -> Image.Image:
    """`image` turned as its EXIF Orientation tag says (the tag then removed); `image` itself when there is none.

    Raises:
        ImageDecodeError: When the EXIF block cannot be read.
    """
    try:
        if image.getexif().get(_ORIENTATION, 1) in (0, 1):
            return image
        turned = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as e:
        raise ImageDecodeError(f"cannot read the image's EXIF orientation ({e})") from e
    return turned if turned is not None else image


def to_8bit(image: Image.Image) -> Image.Image:
    """Return ``image`` with 16-bit grayscale scaled to 8-bit "L"; other 8-bit modes pass unchanged.

    Raises:
        ImageDecodeError: For float images and 32-bit integer images outside [0, 65535].
    """
    if image.mode == "F":
        raise ImageDecodeError("floating-point images are not supported; send 8- or 16-bit images")
    if image.mode not in _SIXTEEN_BIT_MODES:
        return image
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageDecodeError(f"{image.mode} image values must lie in [0, 65535] to be read as 16-bit")
    scaled = np.round(values / 257.0).astype(np.uint8)
    return Image.fromarray(scaled)


def array_to_image(pixels: np.ndarray) -> Image.Image:
    """Wrap a uint8 array as a PIL image (a copy).

    Args:
        pixels: ``(H, W)`` uint8 (becomes mode "L") or ``(H, W, 3)`` uint8 (becomes "RGB").

    Returns:
        The image.

    Raises:
        ImageDecodeError: For another dtype or shape.
    """
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ImageDecodeError(f"expected uint8 (H, W) or (H, W, 3) pixels, got {pixels.dtype} {pixels.shape}")
    return Image.fromarray(np.ascontiguousarray(pixels))


def preprocess(images: Sequence[Image.Image], spec: ModelSpec) -> torch.Tensor:
    """Turn images into a normalised model input batch.

    Each image is converted to the spec's mode (see module docstring); if its size differs from
    ``spec.input_size`` it is resized with the spec's antialiased ``interpolation``, the whole image or (with
    ``crop_pct``) aspect kept and centre-cropped; then it is scaled to [0, 1] and normalised per channel.

    Args:
        images: PIL images of any supported mode and size.
        spec: Gives ``channels``, ``input_size`` = (H, W), ``mean`` and ``std``.

    Returns:
        ``(n, channels, H, W)`` float32 tensor on CPU.

    Raises:
        ImageDecodeError: For an unsupported mode.
    """
    height, width = spec.input_size
    batch = np.empty((len(images), height, width, spec.channels), dtype=np.float32)
    for i, image in enumerate(images):
        batch[i] = _to_array(image, spec)
    batch /= 255.0
    batch -= np.asarray(spec.mean, dtype=np.float32)
    batch /= np.asarray(spec.std, dtype=np.float32)
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def _to_array(image: Image.Image, spec: ModelSpec) -> np.ndarray:
    """Return ``(H, W, channels)`` uint8 pixels of one image in the spec's mode and size."""
    image = _to_mode(to_8bit(upright(image)), "L" if spec.channels == 1 else "RGB")
    height, width = spec.input_size
    if image.size != (width, height) or spec.crop_pct is not None:
        image = _resize(image, spec)
    return np.asarray(image, dtype=np.uint8).reshape(height, width, spec.channels)


def _resize(image: Image.Image, spec: ModelSpec) -> Image.Image:
    """Resize to ``spec.input_size``: the whole image, or (with ``crop_pct``) aspect kept, then a centre crop."""
    height, width = spec.input_size
    resample = _RESAMPLING[spec.interpolation]
    if spec.crop_pct is None:
        return image.resize((width, height), resample, reducing_gap=3.0)
    # The image is scaled to cover (H, W) / crop_pct, aspect kept (torchvision's Resize(int(H / crop_pct)) for
    # square inputs); the crop box is centred as in torchvision's CenterCrop.
    scale = max(height / spec.crop_pct / image.height, width / spec.crop_pct / image.width)
    scaled_w, scaled_h = max(width, round(image.width * scale)), max(height, round(image.height * scale))
    left, top = round((scaled_w - width) / 2), round((scaled_h - height) / 2)
    resized = image.resize((scaled_w, scaled_h), resample, reducing_gap=3.0)
    return resized.crop((left, top, left + width, top + height))


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert to ``mode``, compositing any transparency over black first."""
    if image.mode == mode:
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    try:
        if has_alpha:
            black = Image.new("RGBA", image.size, (0, 0, 0, 255))
            image = Image.alpha_composite(black, image.convert("RGBA"))
        return image.convert(mode)
    except ValueError as e:
        raise ImageDecodeError(f"cannot convert image mode {image.mode!r} to {mode!r}") from e
