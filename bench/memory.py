"""Resident memory of `logitsearch serve` as the index grows: the growth from N = 10k to N = 1M against the
bytes of the vectors themselves (N x C float32).

Each size is a fresh data dir (random logits, C = 100, `{"label", "split"}` metadata per item), served in its
own process; its RSS is read from /proc once `/ready` answers and one search has run.

With `--approximate`, an HNSW index (l2 and ce) over logits shaped like real ones (`bench.ann.shaped_logits`) is
built once per placement of the originals — in memory, on disk, and on disk with the float16 re-rank copy — and opened in a
fresh process (its saved build loaded), which runs 200 approximate searches and reports its resident memory: the
anonymous part (the heap: structures, copies) and the file pages mapped in (the originals read, which the kernel
may evict), against what the index info says per item.

    python -m bench.memory                       # N = 10k and 1M, C = 100
    python -m bench.memory --approximate --sizes 0 200000
"""

import argparse
import json
import logging
import subprocess
import sys
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


OPENED = """
import json, sys
from pathlib import Path
import numpy as np
from bench.ann import shaped_logits
from indexes.ann import AnnOptions
from indexes.durable import DurableIndex
options = AnnOptions(**json.loads(sys.argv[2]))
index = DurableIndex.open(Path(sys.argv[1]), name="m", model_name="m", model_sha256="ab" * 32,
                          dim=int(sys.argv[3]), approximate=options, settle_s=3600)
queries = shaped_logits(200, int(sys.argv[3]), 0.3, seed=7)
exact = 0
for metric in ("l2", "ce"):
    for query in queries[:100]:
        exact += index.search(query[None], 10, metric=metric).exact
status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
kib = {key: int(status[key].split()[0]) for key in ("VmRSS", "RssAnon", "RssFile")}
print(json.dumps({**kib, "exact": exact, "info": index.approximate_info()["resident_bytes_per_item"]}))
"""


def approximate_rss(num_items: int, num_classes: int) -> None:
    """Resident memory of an HNSW index with its originals in memory, on disk, and on disk with a float16 re-rank
    copy."""
    from bench.ann import shaped_logits
    from indexes.ann import AnnOptions
    from indexes.durable import DurableIndex

    items = shaped_logits(num_items, num_classes, 0.3, seed=1)
    ids = [f"i{i}" for i in range(num_items)]
    for placement in ({"originals": "memory"}, {"originals": "disk"}, {"originals": "disk", "rerank_codec": "float16"}):
        options = {"index_type": "hnsw", "metrics": ("l2", "ce"), **placement}
        with tempfile.TemporaryDirectory() as tmp:
            index = DurableIndex.open(
                Path(tmp), name="m", model_name="m", model_sha256="ab" * 32, dim=num_classes,
                approximate=AnnOptions(**options),  # type: ignore[arg-type]
            )  # fmt: skip
            for start in range(0, num_items, 100_000):
                index.upsert(ids[start : start + 100_000], items[start : start + 100_000])
            index.wait_for_approximate()
            index.close()
            opened = subprocess.run(
                [sys.executable, "-c", OPENED, tmp, json.dumps(options), str(num_classes)],
                capture_output=True, check=True, cwd=Path(__file__).parents[1],
            )  # fmt: skip
            figures = json.loads(opened.stdout.decode().splitlines()[-1])
        logger.info(
            "%s: RSS %.0f MB (anonymous %.0f MB, file pages %.0f MB) at N = %d, C = %d; the index info says %s B/item "
            "(= %.0f MB); %d of 200 searches exact",
            placement, figures["VmRSS"] / 1024, figures["RssAnon"] / 1024, figures["RssFile"] / 1024, num_items,
            num_classes, figures["info"], figures["info"]["total"] * num_items / 1e6, figures["exact"],
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument("--approximate", action="store_true", help="an HNSW index's memory, originals in memory/disk")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.approximate:
        approximate_rss(args.sizes[1], args.classes)
        return
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
