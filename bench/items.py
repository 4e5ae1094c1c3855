"""`POST /v1/items` over HTTP against in-process `DurableIndex.upsert`, items/s as ratios from one run.

Both write the same 1000-item batches (C = 100 random logits, `{"label", "split"}` metadata) into a durable
index on the same disk (write-ahead log, fsync per request). Over HTTP the client's encoding counts: JSON
floats as `httpx` sends them, the logits as `logits_b64` (base64 little-endian float32) in each item, or the
batch as columns (the ids, one `logits_b64` matrix, the metadata), as the Python client sends. Each round writes
`--items` fresh ids with each method; the median of `--rounds` paired ratios is printed.

    python -m bench.items                      # 20,000 items per method and round, 3 rounds
"""

import argparse
import base64
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import httpx
import numpy as np

from bench.search import make_data_dir, start_server
from indexes.device import configure_cpu
from indexes.durable import DurableIndex

logger = logging.getLogger("bench.items")
BATCH = 1000


def metadata(i: int) -> dict[str, object]:
    return {"label": i % 10, "split": "train" if i % 5 else "test"}


def items_per_second(write: Callable[[int, np.ndarray], object], vectors: np.ndarray, first_id: int) -> float:
    start = time.perf_counter()
    for offset in range(0, len(vectors), BATCH):
        write(first_id + offset, vectors[offset : offset + BATCH])
    return len(vectors) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8792)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    vectors = (np.random.default_rng(0).standard_normal((args.items, args.classes)) * 4).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        name = make_data_dir(root / "served", args.classes, vectors[:1])
        local = DurableIndex.open(
            root / "local", name="local", model_name="m", model_sha256="ab" * 32, dim=args.classes
        )
        server = start_server(root / "served", name, args.port, args.threads)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{args.port}", timeout=600) as client:

                def in_process(first: int, batch: np.ndarray) -> object:
                    ids = [f"x{first + i}" for i in range(len(batch))]
                    return local.upsert(ids, batch, [metadata(first + i) for i in range(len(batch))])

                def post(first: int, batch: np.ndarray, binary: bool) -> object:
                    items = [
                        {"id": f"x{first + i}", "metadata": metadata(first + i)}
                        | (
                            {"logits_b64": base64.b64encode(row.tobytes()).decode()}
                            if binary
                            else {"logits": row.tolist()}
                        )
                        for i, row in enumerate(batch)
                    ]
                    response = client.post("/v1/items", json={"items": items})
                    response.raise_for_status()
                    return response

                def post_columns(first: int, batch: np.ndarray) -> object:
                    body = {
                        "ids": [f"x{first + i}" for i in range(len(batch))],
                        "logits_b64": base64.b64encode(np.ascontiguousarray(batch, dtype="<f4").tobytes()).decode(),
                        "shape": list(batch.shape),
                        "metadata": [metadata(first + i) for i in range(len(batch))],
                    }
                    response = client.post("/v1/items", json=body)
                    response.raise_for_status()
                    return response

                methods: dict[str, Callable[[int, np.ndarray], object]] = {
                    "in-process upsert": in_process,
                    "HTTP JSON floats": lambda first, batch: post(first, batch, False),
                    "HTTP logits_b64 per item": lambda first, batch: post(first, batch, True),
                    "HTTP columns (ids, logits_b64, metadata)": post_columns,
                }
                rounds = [
                    {
                        name: items_per_second(write, vectors, (r * len(methods) + m) * args.items)
                        for m, (name, write) in enumerate(methods.items())
                    }
                    for r in range(args.rounds)
                ]
        finally:
            server.terminate()
            server.wait(timeout=60)
            local.close(compact=False)
    lines = ["| method | items/s | / in-process |", "|---|---|---|"]
    for name in methods:
        rate = statistics.median(r[name] for r in rounds)
        ratio = statistics.median(r[name] / r["in-process upsert"] for r in rounds)
        lines.append(f"| {name} | {rate:,.0f} | {ratio:.2f} |")
    logger.info(
        "%d items per round in batches of %d, C = %d, %d threads, %d rounds (medians)\n%s",
        args.items, BATCH, args.classes, args.threads, args.rounds, "\n".join(lines),
    )  # fmt: skip


if __name__ == "__main__":
    main()
