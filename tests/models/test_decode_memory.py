"""The worst legal image has a stated memory cost: about 4 bytes per pixel of the stored image, once."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from models import decode_image
from models.images import WORKING_SIDE

#: Decoding (and then preprocessing and thumbnailing) a W x H image grows the process by at most this much more
#: than the decoder's own buffer of W x H x 4 bytes (docs/operations.md, "Reliability").
OVERHEAD_BYTES = 32 * 2**20

_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from models import decode_image, make_thumbnail
    from models.images import preprocess
    from models.spec import ModelSpec

    data = Path(sys.argv[1]).read_bytes()
    spec = ModelSpec("t", "tiny_cnn", 3, ("a", "b", "c"), input_size=(224, 224), channels=3,
                     mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), crop_pct=0.875)
    preprocess([decode_image(Path(sys.argv[2]).read_bytes(), max_bytes=1 << 24, max_pixels=1 << 20)], spec)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    image = decode_image(data, max_bytes=1 << 24, max_pixels=25_000_000)
    preprocess([image], spec)
    make_thumbnail(image, 16_384)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grown": (after - before) * 1024, "size": image.size}))
    """
)


def _peak_growth(tmp_path: Path, image: Image.Image, format: str) -> tuple[int, list[int]]:
    """How much the peak resident memory of a fresh process grows while it decodes, preprocesses and
    thumbnails `image` saved as `format` (after a warm-up on a small image)."""
    path, small = tmp_path / f"big.{format}", tmp_path / "small.png"
    image.save(path, format=format)
    Image.new("RGB", (64, 64)).save(small)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(small)], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found["grown"], found["size"]


def test_decode_5000x5000_rgba_png_within_stated_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = np.zeros((5000, 5000, 4), dtype=np.uint8)
    pixels[::50, ::50] = rng.integers(0, 256, (100, 100, 4), dtype=np.uint8)  # small file, fast to encode
    grown, size = _peak_growth(tmp_path, Image.fromarray(pixels, "RGBA"), "PNG")
    assert grown <= 5000 * 5000 * 4 + OVERHEAD_BYTES, f"grew {grown / 2**20:.0f} MiB"
    assert max(size) <= 2 * WORKING_SIDE


def test_decode_large_jpeg_uses_draft(tmp_path: Path) -> None:
    grown, size = _peak_growth(tmp_path, Image.new("RGB", (4000, 4000), (200, 10, 10)), "JPEG")
    assert grown <= 4000 * 4000 * 4 // 4 + OVERHEAD_BYTES, f"grew {grown / 2**20:.0f} MiB"  # decoded at 1/2 scale
    assert WORKING_SIDE <= max(size) <= 2 * WORKING_SIDE


def test_decode_image_keeps_small_images_as_they_are() -> None:
    image = Image.new("RGB", (WORKING_SIDE, 10), (1, 2, 3))
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    assert decode_image(buffer.getvalue(), max_bytes=1 << 20, max_pixels=1 << 20).size == (WORKING_SIDE, 10)
