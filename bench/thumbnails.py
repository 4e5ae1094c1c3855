"""What keeping thumbnails costs `logitsearch index --images`: images/s with the switch on, over off, same run.

The pipeline is the real one (`service.catalog.bootstrap.add_image_folder`: DataLoader workers decode, preprocess and,
with thumbnails on, make each thumbnail; the digits CNN embeds; batches are upserted into a durable index on
disk). Two folders: 8x8 digit PNGs (thumbnails: 96 px PNGs enlarged without blurring) and JPEG photos of
300-500 px (thumbnails: 96 px WebP), both embedded by the digits CNN so that the model is not the cost.

    python bench/thumbnails.py                    # 4096 digits, 256 photos, 3 rounds, median
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import images_per_second, pipeline, write_digits, write_photos  # noqa: E402

from models.loader import default_workers  # noqa: E402
from service.catalog.bootstrap import IngestOptions, load_model  # noqa: E402
from service.config import Settings  # noqa: E402

logger = logging.getLogger("bench.thumbnails")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=4096)
    parser.add_argument("--photos", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--num-threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logger.setLevel(logging.INFO)
    torch.set_num_threads(args.num_threads)
    rows = [f"{'images':<8} {'count':>6} {'workers':>7} {'off img/s':>10} {'on img/s':>9} {'on/off':>7}"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", device="cpu", faiss_gpu="false", num_threads=args.num_threads)
        classifier = load_model(settings)  # trains the digits CNN into the temporary data dir on first use
        write_digits(root / "digits", args.digits)
        write_photos(root / "photos", args.photos)
        for kind, count in (("digits", args.digits), ("photos", args.photos)):
            for workers in sorted({0, default_workers()}):
                rates = [
                    images_per_second(
                        pipeline(
                            classifier, root / kind, settings, IngestOptions(args.batch_size, workers, thumbnails=on)
                        ),
                        args.rounds,
                    )
                    for on in (False, True)
                ]
                rows.append(
                    f"{kind:<8} {count:>6} {workers:>7} {rates[0]:>10.0f} {rates[1]:>9.0f} {rates[1] / rates[0]:>7.2f}"
                )
                logger.info(rows[-1])
    logger.info(
        "torch %s, %d threads, median of %d rounds\n%s",
        torch.__version__,
        args.num_threads,
        args.rounds,
        "\n".join(rows),
    )


if __name__ == "__main__":
    main()
