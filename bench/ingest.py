"""Images/s of `logitsearch index --images` against a bare torch forward loop over the same preprocessed tensors.

A folder of image files is written to a temporary directory: 8x8 digit PNGs for the digits CNN, and JPEG photos
(crops of scikit-image's photos, 300-500 px a side) for EfficientNet-Lite0 when the `zoo` extra is installed. The
pipeline is the real one (`service.catalog.bootstrap.add_image_folder`: DataLoader workers decode and preprocess, the model
embeds batches, each batch is upserted into a durable index on disk). The baseline, measured in the same run, is
the model alone: every file decoded and preprocessed beforehand, then only ``module(batch)`` under
``inference_mode``. Goal: pipeline >= 80 % of the baseline on a CPU.

    python bench/ingest.py                       # both models, 3 rounds, median
    python bench/ingest.py --models digits-cnn --digits 20000
"""

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from indexes.durable import DurableIndex
from models import Classifier, decode_image, load_digit_images, preprocess
from models.loader import default_workers
from service.catalog.bootstrap import IngestOptions, add_image_folder, load_model
from service.config import Settings

logger = logging.getLogger("bench.ingest")


def write_digits(folder: Path, count: int) -> None:
    digits = load_digit_images().images
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(digits[i % len(digits)]).save(folder / f"{i:06d}.png")


def write_photos(folder: Path, count: int, seed: int = 0) -> None:
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(getattr(data, name)()).convert("RGB") for name in ("chelsea", "coffee", "astronaut")]
    folder.mkdir(parents=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        w, h = rng.integers(300, min(photo.size) + 1, size=2)
        left, top = rng.integers(0, photo.width - w + 1), rng.integers(0, photo.height - h + 1)
        photo.crop((left, top, left + w, top + h)).save(folder / f"{i:06d}.jpg", quality=90)


def bare_forward(classifier: Classifier, folder: Path, batch_size: int) -> Callable[[], int]:
    """The baseline: a forward loop over tensors preprocessed beforehand (not timed)."""
    limits = {"max_bytes": 1 << 26, "max_pixels": 1 << 26}
    paths = sorted(folder.iterdir())
    x = torch.cat([preprocess([decode_image(p.read_bytes(), **limits)], classifier.spec) for p in paths])

    def run() -> int:
        with torch.inference_mode():
            for batch in x.split(batch_size):
                classifier.module(batch)
        return len(x)

    return run


def pipeline(classifier: Classifier, folder: Path, settings: Settings, options: IngestOptions) -> Callable[[], int]:
    """`logitsearch index --images folder` into a fresh durable index each round."""

    def run() -> int:
        with tempfile.TemporaryDirectory() as root:
            spec = classifier.spec
            index = DurableIndex.open(
                Path(root), name="bench", model_name=spec.name, model_sha256=spec.sha256, dim=spec.num_classes
            )
            try:
                return add_image_folder(index, classifier, folder, settings, options)
            finally:
                index.close()

    return run


def images_per_second(run: Callable[[], int], rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = run()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="digits-cnn,efficientnet-lite0")
    parser.add_argument("--digits", type=int, default=8192, help="digit PNGs for the digits CNN")
    parser.add_argument("--photos", type=int, default=192, help="JPEG photos for EfficientNet-Lite0")
    parser.add_argument("--batch-size", type=int, default=256, help="as `logitsearch index` (default 256)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    torch.set_num_threads(args.num_threads)
    rows = [
        f"{'model':<20} {'images':>7} {'workers':>7} {'thumbs':>6} {'bare img/s':>11} {'index img/s':>12} {'ratio':>6}"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", device="cpu", faiss_gpu="false", num_threads=args.num_threads)
        for name in args.models.split(","):
            if name == "efficientnet-lite0":
                from models.zoo import install_model

                install_model(name, settings.models_dir)
                write_photos(root / name, args.photos)
            else:
                write_digits(root / name, args.digits)
            classifier = load_model(settings.model_copy(update={"model": name}))
            bare = images_per_second(bare_forward(classifier, root / name, args.batch_size), args.rounds)
            for workers, thumbnails in [(0, True), (default_workers(), True), (default_workers(), False)]:
                options = IngestOptions(batch_size=args.batch_size, workers=workers, thumbnails=thumbnails)
                rate = images_per_second(pipeline(classifier, root / name, settings, options), args.rounds)
                count = len(list((root / name).iterdir()))
                rows.append(
                    f"{name:<20} {count:>7} {workers:>7} {'on' if thumbnails else 'off':>6} {bare:>11.0f} "
                    f"{rate:>12.0f} {rate / bare:>6.2f}"
                )
                logger.info(rows[-1])
    logger.info(
        "torch %s, %d threads, batch %d, median of %d rounds\n%s",
        torch.__version__, args.num_threads, args.batch_size, args.rounds, "\n".join(rows),
    )  # fmt: skip


if __name__ == "__main__":
    main()
