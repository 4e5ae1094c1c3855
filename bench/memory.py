"""Resident memory of `logitsearch serve` as the index grows: the growth from N = 10k to N = 1M against the
bytes of the vectors themselves (N x C float32).

Each size is a fresh data dir (random logits, C = 100, `{"label", "split"}` metadata per item), served in its
own process; its RSS is read from /proc once `/ready` answers and one search has run.

    python -m bench.memory                       # N = 10k and 1M, C = 100
"""

import argparse
import logging
import tempfile
from pathlib import Path

import httpx
import numpy as np

from bench.search import make_data_dir, start_server

logger = logging.getLogger("bench.memory")


def served_rss(num_items: int, num_classes: int, port: int, threads: int) -> int:
    """Bytes resident in the server process after start and one search."""
    vectors = (np.random.default_rng(0).standard_normal((num_items, num_classes)) * 4).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        name = make_data_dir(Path(tmp), num_classes, vectors, with_metadata=True)
        del vectors
        server = start_server(Path(tmp), name, port, threads)
        try:
            body = {"queries": [{"id": "item-0"}], "k": 10, "filter": {"split": "test"}}
            httpx.post(f"http://127.0.0.1:{port}/v1/search", json=body, timeout=600).raise_for_status()
            status = Path(f"/proc/{server.pid}/status").read_text()
            return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024
        finally:
            server.terminate()
            server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8793)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    small, large = (served_rss(n, args.classes, args.port, args.threads) for n in args.sizes)
    vector_bytes = (args.sizes[1] - args.sizes[0]) * args.classes * 4
    logger.info(
        "RSS %.0f MB at N = %d, %.0f MB at N = %d: growth %.0f MB for %.0f MB of vectors = %.2fx (%.0f B/item over "
        "the vectors)",
        small / 1e6, args.sizes[0], large / 1e6, args.sizes[1], (large - small) / 1e6, vector_bytes / 1e6,
        (large - small) / vector_bytes, (large - small - vector_bytes) / (args.sizes[1] - args.sizes[0]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
