"""Approximate (hnsw, ivf) against the flat index on the same data: recall@10 and throughput ratios from one run.

Logits shaped like real ones: rows of the real EfficientNet-Lite0 outputs in `bench/results/real-networks/` (5,000
ImageNet validation-style images, C = 1000; for C < 1000 the columns of C classes drawn at random, seeded), drawn
with replacement and given Gaussian noise of `--noise` times each class column's standard deviation (seeded), so
that the rows keep the real outputs' spread, peaks and confusions without repeating. Queries are drawn the same way
and are not stored.

For each index type the items go into an index served by `logitsearch serve` in a separate process (uvicorn,
loopback HTTP, binary batches), which builds its structures and measures their recall at start; the script waits
for that, then for every (metric, T):

- recall@10 of the approximate answers against the same service's exact answers (`"exact": true`) for the same
  queries, with the recall the service says it measured;
- queries per second of both, one query per request and batches of 256, and their ratio (approximate / exact);
- in this process, on the same structures: raw FAISS (the structure's own search at the parameters the service
  chose, candidates only) against the store's whole approximate search (candidates + exact re-rank), so the cost
  of the wrapper shows beside the library it wraps.

Build seconds and bytes per item per structure come from the index info.

    python bench/ann.py                                     # N = 200k, C = 100, hnsw and ivf
    python bench/ann.py --items 1000000 --classes 100 --types hnsw
    python bench/ann.py --items 200000 --classes 1000 --metrics l2 ce kl
"""

import service  # noqa: F401, I001 - first: it sets OpenBLAS's wait policy, which numpy reads when it loads

import argparse
import base64
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import httpx
import numpy as np

from bench.search import LeanClient, make_data_dir, start_server, time_per_query
from indexes.ann import AnnOptions, Plan, encode_queries
from indexes.device import configure_cpu
from indexes.durable import DurableIndex
from service.catalog.entries import IndexEntry, write_entry

logger = logging.getLogger("bench.ann")
REAL_LOGITS = Path(__file__).parent / "results" / "real-networks" / "efficientnet-lite0" / "logits.npz"
POINTS = (("l2", 1.0), ("ce", 1.0), ("ce", 4.0), ("kl", 1.0), ("kl", 4.0), ("js", 1.0), ("ce", 0.5), ("ce", 0.25))


def shaped_logits(num_rows: int, num_classes: int, noise: float, seed: int) -> np.ndarray:
    """`(n, C)` float32 rows of the real EfficientNet-Lite0 logits (C of its classes, drawn with seed 0), resampled
    with per-class Gaussian noise of `noise` × the column's std."""
    real = np.load(REAL_LOGITS)["logits"].astype(np.float32)
    columns = np.sort(np.random.default_rng(0).choice(real.shape[1], num_classes, replace=False))
    real = real[:, columns]
    rng = np.random.default_rng(seed)
    out = np.empty((num_rows, num_classes), np.float32)
    scale = (noise * real.std(axis=0)).astype(np.float32)
    for start in range(0, num_rows, 100_000):
        stop = min(start + 100_000, num_rows)
        rows = rng.integers(0, len(real), stop - start)
        out[start:stop] = real[rows] + rng.standard_normal((stop - start, num_classes), dtype=np.float32) * scale
    return out


def _search(client: LeanClient, name: str, batch: np.ndarray, metric: str, t: float, exact: bool) -> dict[str, object]:
    encoded = base64.b64encode(np.ascontiguousarray(batch, dtype="<f4").tobytes()).decode()
    body = {"logits_b64": encoded, "shape": list(batch.shape), "k": 10, "metric": metric, "temperature": t}
    answer = client.post(f"/v1/indexes/{name}/search", {**body, "exact": exact})
    assert isinstance(answer, dict)
    return answer


def _wait_ready(port: int, name: str) -> dict[str, object]:
    began = time.monotonic()
    while True:
        info = httpx.get(f"http://127.0.0.1:{port}/v1/indexes/{name}", timeout=600).json()
        if info["approximate"]["status"] == "ready":
            logger.info(
                "%s: built and measured in the service %.0f s after it was ready", name, time.monotonic() - began
            )
            return dict(info)
        time.sleep(1.0)


def bench_http(args: argparse.Namespace, index_type: str, items: np.ndarray, queries: np.ndarray) -> list[str]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        name = make_data_dir(Path(tmp), args.classes, items)
        write_entry(
            Path(tmp) / "indexes" / name,
            IndexEntry(name, name, "faiss", index_type, temperatures=args.temperatures, metrics=args.metrics,
                       codec=args.codec, target_recall=args.target_recall),
        )  # fmt: skip
        logger.info("serving %s over %d items", index_type, len(items))
        server = start_server(Path(tmp), name, args.port, args.threads)
        try:
            info = _wait_ready(args.port, name)
            approximate = info["approximate"]
            assert isinstance(approximate, dict)
            for structure in approximate["structures"]:
                rows.append(
                    f"| {index_type} | structure {structure['family']} T={structure['temperature']} | build "
                    f"{structure['build_s']:.1f} s | {structure['bytes_per_item']:.0f} B/item |"
                )
            client = LeanClient(args.port)
            try:
                for metric, t in POINTS:
                    if metric not in args.metrics:
                        continue
                    rows.append(_bench_point(client, name, index_type, metric, t, queries, args))
                    logger.info("%s", rows[-1])
            finally:
                client.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    return rows


def _bench_point(
    client: LeanClient, name: str, index_type: str, metric: str, t: float, queries: np.ndarray, args: argparse.Namespace
) -> str:
    found = [_search(client, name, queries[i : i + 50], metric, t, False) for i in range(0, args.queries, 50)]
    truth = [_search(client, name, queries[i : i + 50], metric, t, True) for i in range(0, args.queries, 50)]
    hits = []
    for approximate, exact in zip(found, truth, strict=True):
        for a, e in zip(approximate["results"], exact["results"], strict=True):  # type: ignore[call-overload]
            hits.append(len({h["id"] for h in a} & {h["id"] for h in e}) / max(1, len(e)))
    said = found[0]["recall_at_10"]
    is_exact = found[0]["exact"]
    cells = []
    for batch in (1, 256):
        fast = time_per_query(lambda q: _search(client, name, q, metric, t, False), queries, batch, args.seconds)
        slow = time_per_query(lambda q: _search(client, name, q, metric, t, True), queries, batch, args.seconds)
        cells += [f"{1 / fast:,.0f}", f"{1 / slow:,.0f}", f"{slow / fast:.1f}×"]
    said_text = "exact" if is_exact else f"{said:.3f}"
    return f"| {index_type} | {metric} | {t:g} | {np.mean(hits):.3f} | {said_text} | " + " | ".join(cells) + " |"


def bench_library(args: argparse.Namespace, index_type: str, items: np.ndarray, queries: np.ndarray) -> list[str]:
    """Raw FAISS (the structure's search at the chosen parameters) against the store's approximate search."""
    options = AnnOptions(index_type, tuple(args.metrics), tuple(args.temperatures), args.codec, args.target_recall)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        index = DurableIndex.open(
            Path(tmp), name="b", model_name="m", model_sha256="ab" * 32, dim=args.classes, approximate=options
        )
        try:
            for start in range(0, len(items), 100_000):
                index.upsert([f"i{i}" for i in range(start, start + len(items[start : start + 100_000]))],
                             items[start : start + 100_000])  # fmt: skip
            index.wait_for_approximate()
            state = index._index.approximate  # the bench reaches into the store for the structure it times
            assert state is not None
            for metric, t in POINTS[:3]:
                if metric not in args.metrics:
                    continue
                plan = state.plan(metric, t, None)
                if plan is None:
                    continue
                raw, store = _library_kernels(index, plan, metric, t)
                for batch in (1, 256):
                    r, s = (time_per_query(run, queries, batch, args.seconds) for run in (raw, store))
                    rows.append(
                        f"| {index_type} | {metric} | {t:g} | {batch} | {r * 1e3:.3f} | {s * 1e3:.3f} | {s / r:.2f} |"
                    )
                    logger.info("%s", rows[-1])
        finally:
            index.close(compact=False)
    return rows


def _library_kernels(
    index: DurableIndex, plan: Plan, metric: str, t: float
) -> tuple[Callable[[np.ndarray], object], Callable[[np.ndarray], object]]:
    """The structure's own FAISS search at the plan's parameters, and the store's whole approximate search."""

    def raw(queries: np.ndarray) -> object:
        encoded = encode_queries(plan.structure.family, queries.astype(np.float64), t, plan.grid)
        return plan.structure.search(encoded, plan.candidates, plan.param, None)

    def store(queries: np.ndarray) -> object:
        return index.search(queries, 10, metric=metric, temperature=t)

    return raw, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--types", nargs="+", default=["hnsw", "ivf"], choices=["hnsw", "ivf"])
    parser.add_argument("--metrics", nargs="+", default=["l2", "ce", "kl", "js"])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 1.0, 4.0])
    parser.add_argument("--codec", default="float32", choices=["float32", "float16", "sq8"])
    parser.add_argument("--target-recall", type=float, default=0.95)
    parser.add_argument("--noise", type=float, default=0.3)
    parser.add_argument("--queries", type=int, default=200, help="for recall (multiple of 50)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed loop per column")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--no-library", action="store_true", help="skip the in-process raw FAISS comparison")
    parser.add_argument("--out", type=Path, help="append the tables to this Markdown file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    items = shaped_logits(args.items, args.classes, args.noise, seed=1)
    queries = shaped_logits(max(args.queries, 512), args.classes, args.noise, seed=2)
    http = ["| index | metric | T | recall@10 vs exact | recall the service measured | approx q/s (1) | exact q/s (1) "
            "| speed-up (1) | approx q/s (256) | exact q/s (256) | speed-up (256) |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    library = [
        "| index | metric | T | batch | raw FAISS ms/q | store ms/q | store / raw |",
        "|---|---|---|---|---|---|---|",
    ]
    for index_type in args.types:
        http += bench_http(args, index_type, items, queries)
        if not args.no_library:
            library += bench_library(args, index_type, items, queries)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    text = (
        f"## N = {args.items:,}, C = {args.classes}, codec {args.codec}, target recall {args.target_recall} "
        f"({datetime.now(UTC):%Y-%m-%d})\n\n{cpu}, {os.cpu_count()} cores, {args.threads} threads, Python "
        f"{platform.python_version()}, faiss {faiss.__version__}; declared T {args.temperatures}, noise {args.noise}\n\n"
        + "\n".join(http) + "\n\n" + "\n".join(library) + "\n"
    )  # fmt: skip
    logger.info("%s", text)
    if args.out is not None:
        with open(args.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
