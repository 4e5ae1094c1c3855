"""`POST /v1/embed` over HTTP against decoding and the forward pass done back to back in process, as ratios.

The service starts on a fresh data directory with the embedded default (the digits CNN, trained at start);
this process loads the same model. The same batch of digit PNGs then goes through:

- decode: `decode_image` of each PNG and `preprocess` of the batch (what the service does before the model);
- forward: the model on the preprocessed batch;
- decode + forward: both, back to back (the goal's yardstick);
- HTTP: `POST /v1/embed` with the images as base64 in JSON (answer as JSON floats, and as `logits_b64`), and as
  a multipart upload; each body encoded once and sent over one keep-alive connection (`bench.search.LeanClient`).

Each round times every column for about `--seconds`; the median over `--rounds` of the ratios within a round
is printed, so a machine shared with other work still gives comparable ratios.

    python -m bench.embed                      # 256 images, 3 rounds
"""

import service  # noqa: F401, I001 - first: it sets OpenBLAS's wait policy, which numpy reads when it loads

import argparse
import base64
import io
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

# isort: split
import httpx

from bench.search import LeanClient, start_server
from indexes.device import configure_cpu
from models import array_to_image, decode_image, load_classifier, load_digit_images, preprocess
from service.config import DEFAULT_MODEL

logger = logging.getLogger("bench.embed")


def digit_pngs(count: int) -> list[bytes]:
    """`count` PNGs of scikit-learn's 8 x 8 digits, cycling through them."""
    images = load_digit_images().images
    pngs = []
    for i in range(count):
        buffer = io.BytesIO()
        array_to_image(images[i % len(images)]).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def seconds_per_call(run: Callable[[], object], seconds: float) -> float:
    run()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < 3:
        run()
        done += 1
    return (time.perf_counter() - start) / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed loop per column and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8793)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    pngs = digit_pngs(args.images)
    encoded = [base64.b64encode(png).decode() for png in pngs]
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), None, args.port, args.threads)
        try:
            classifier = load_classifier(Path(tmp) / "models", DEFAULT_MODEL, torch.device("cpu"))
            limit = 1 << 26

            def decode() -> torch.Tensor:
                return preprocess(
                    [decode_image(png, max_bytes=limit, max_pixels=limit) for png in pngs], classifier.spec
                )

            batch = decode()
            # The bodies are encoded once, and sent over one keep-alive connection: the client's own cost stays
            # out of the figures (httpx would add milliseconds encoding 256 files a request).
            as_json = {
                encoding: json.dumps({"images": encoded, "encoding": encoding}).encode()
                for encoding in ("json", "base64")
            }
            files = [("files", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
            upload = httpx.Request("POST", "http://127.0.0.1/", files=files, data={"encoding": "base64"})
            multipart = (upload.read(), upload.headers["content-type"])
            client = LeanClient(args.port)

            def post(body: bytes, content_type: str) -> object:
                return client.post_bytes("/v1/embed", body, content_type)

            columns: dict[str, Callable[[], object]] = {
                "decode": decode,
                "forward": lambda: classifier.logits_from_tensor(batch),
                "decode + forward": lambda: classifier.logits_from_tensor(decode()),
                "HTTP JSON, JSON floats back": lambda: post(as_json["json"], "application/json"),
                "HTTP JSON, logits_b64 back": lambda: post(as_json["base64"], "application/json"),
                "HTTP multipart, logits_b64 back": lambda: post(*multipart),
            }
            rounds = [
                {name: seconds_per_call(run, args.seconds) for name, run in columns.items()} for _ in range(args.rounds)
            ]
            client.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    lines = ["| work | ms | / (decode + forward) |", "|---|---|---|"]
    for name in columns:
        ms = statistics.median(r[name] for r in rounds) * 1e3
        ratio = statistics.median(r[name] / r["decode + forward"] for r in rounds)
        lines.append(f"| {name} | {ms:.2f} | {ratio:.2f} |")
    logger.info(
        "%d digit PNGs per call, %d threads, torch %s, %d rounds (medians)\n%s",
        args.images, args.threads, torch.__version__, args.rounds, "\n".join(lines),
    )  # fmt: skip


if __name__ == "__main__":
    main()
