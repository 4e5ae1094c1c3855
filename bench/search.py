"""Service `/v1/search` throughput against raw in-process FAISS on the same index, as ratios from one run.

For each number of classes C, N random logits go into an index served by `logitsearch serve` in a separate
process (uvicorn, one worker, JSON over loopback HTTP); the same vectors go into a bare `faiss.IndexFlatL2` in
this process with the same thread count and BLAS threshold. Both answer the same queries, single and batched.

    python bench/search.py                 # N = 100k, C = 10 and 100, batch 1 and 256
    python bench/search.py --num-items 20000 --classes 10 --seconds 2
"""

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import httpx
import numpy as np

from indexes.device import configure_cpu
from indexes.durable import DurableIndex
from models import ModelSpec, create_model, save_classifier

logger = logging.getLogger("bench.search")


def make_data_dir(root: Path, num_classes: int, vectors: np.ndarray) -> str:
    """A data dir with a random tiny model of `num_classes` outputs and an index holding `vectors`."""
    name = f"bench-c{num_classes}"
    spec = ModelSpec(
        name=name,
        arch="tiny-cnn",
        num_classes=num_classes,
        labels=tuple(map(str, range(num_classes))),
        input_size=(8, 8),
        channels=1,
        mean=(0.5,),
        std=(0.25,),
        arch_kwargs={"seed": 0},
    )
    spec = save_classifier(create_model("tiny-cnn", num_classes, 1, seed=0), spec, root / "models")
    index = DurableIndex.open(
        root / "indexes" / name, name=name, model_name=name, model_sha256=spec.sha256, dim=num_classes
    )
    for start in range(0, len(vectors), 50_000):
        stop = min(start + 50_000, len(vectors))
        index.upsert([f"item-{i}" for i in range(start, stop)], vectors[start:stop])
    index.close()
    return name


def time_per_query(run: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, seconds: float) -> float:
    """Seconds per query, running batches of `batch` queries in a loop for about `seconds` (after a warm-up)."""
    run(queries[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        offset = (done * batch) % (len(queries) - batch + 1)
        run(queries[offset : offset + batch])
        done += 1
    return (time.perf_counter() - start) / (done * batch)


def start_server(data_dir: Path, name: str, port: int, threads: int) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "LOGITSEARCH_DATA_DIR": str(data_dir),
        "LOGITSEARCH_MODEL": name,
        "LOGITSEARCH_INDEX": name,
        "LOGITSEARCH_PORT": str(port),
        "LOGITSEARCH_DEVICE": "cpu",
        "LOGITSEARCH_NUM_THREADS": str(threads),
        "LOGITSEARCH_LOG_LEVEL": "warning",
        "LOGITSEARCH_MAX_BATCH": "1024",
    }
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the service did not become ready")


def bench(num_items: int, num_classes: int, batches: list[int], k: int, seconds: float, threads: int) -> list[str]:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((num_items, num_classes)) * 4).astype(np.float32)
    queries = (rng.standard_normal((2048, num_classes)) * 4).astype(np.float32)
    raw = faiss.IndexFlatL2(num_classes)
    raw.add(vectors)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        name = make_data_dir(Path(tmp), num_classes, vectors)
        port = 8700 + num_classes % 100
        server = start_server(Path(tmp), name, port, threads)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:

                def via_service(batch: np.ndarray) -> object:
                    body = {"queries": [{"logits": q.tolist()} for q in batch], "k": k}
                    response = client.post("/v1/search", json=body)
                    response.raise_for_status()
                    return response.json()

                for batch in batches:
                    t_raw = time_per_query(lambda q: raw.search(q, k), queries, batch, seconds)
                    t_service = time_per_query(via_service, queries, batch, seconds)
                    rows.append(
                        f"| {num_classes} | {num_items} | {batch} | {t_raw * 1e3:.3f} | "
                        f"{t_service * 1e3:.3f} | {t_service / t_raw:.1f}x | {1 / t_service:.0f} |"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=100_000)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed loop per measurement")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    rows = [
        "| C | N | batch | raw FAISS ms/query | service ms/query | service / raw | service queries/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for num_classes in args.classes:
        rows += bench(args.num_items, num_classes, args.batches, args.k, args.seconds, args.threads)
    logger.info("k = %d, %d threads, %s\n%s", args.k, args.threads, faiss.__version__, "\n".join(rows))


if __name__ == "__main__":
    main()
