"""`/v1/search` against raw FAISS and the memory/compute floor on the same matrix, as ratios from one run.

For each N, N random logits (C classes) go into an index served by `logitsearch serve` in a separate process
(uvicorn, one worker, loopback HTTP), into the store's own `FaissIndex` in this process, and into bare FAISS
flat indexes (`IndexFlatL2` on the logits; `IndexFlatIP` on the stored `log q` for ce, which is what FAISS
would search). The same queries go through all of them, with the same thread count and BLAS threshold:

- raw FAISS: `index.search(queries, k)`, candidates only (no exact re-rank, no ids);
- floor: one query = one numpy GEMV over the matrix (`X @ q`, reading it once at memory bandwidth); a batch =
  the sgemm of the batch with the matrix in blocks of rows, by the faster of numpy's and torch's BLAS here (the
  compute floor at the rate measured here);
- store: `FaissIndex.search` in process (exact top-k with ids and metadata);
- HTTP: `POST /v1/search` with the batch as binary (`logits_b64` + `shape`), and with JSON floats, over one
  keep-alive connection: a bare socket client, one `sendall` per request (`http.client` would add ~0.3 ms of
  its own per request, httpx about a millisecond).

The last column is the service's fixed cost: what a request over HTTP (binary) takes beyond the same search in
process, per request (the client's own encoding, parsing and the loopback round trip included).

Each round times every column back to back for about `--seconds`; ratios are taken within a round and the
median over `--rounds` rounds is printed, so a machine shared with other work still gives comparable ratios.

    python bench/search.py                                  # N = 10k, 100k, 1M; C = 100; batch 1 and 256
    python bench/search.py --sizes 20000 --classes 10 --seconds 0.5 --rounds 1
"""

import service  # noqa: F401, I001 - first: it sets OpenBLAS's wait policy, which numpy reads when it loads

import argparse
import base64
import json
import logging
import os
import socket
import statistics
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
from indexes.faiss_index import FaissIndex
from indexes.metrics import EMBEDDINGS
from models import ModelSpec, create_model, save_classifier

logger = logging.getLogger("bench.search")
COLUMNS = ("raw FAISS", "floor", "store", "HTTP binary", "HTTP JSON")


def make_data_dir(root: Path, num_classes: int, vectors: np.ndarray, with_metadata: bool = False) -> str:
    """A data dir with a random tiny model of `num_classes` outputs and an index holding `vectors` (with
    `{"label", "split"}` metadata per item when `with_metadata`)."""
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
    for start in range(0, len(vectors), 100_000):
        stop = min(start + 100_000, len(vectors))
        metadata = [{"label": i % 10, "split": "test" if i % 5 == 0 else "train"} for i in range(start, stop)]
        index.upsert(
            [f"item-{i}" for i in range(start, stop)], vectors[start:stop], metadata if with_metadata else None
        )
    index.close()
    return name


def start_server(data_dir: Path, name: str | None, port: int, threads: int) -> subprocess.Popen[bytes]:
    """`logitsearch serve` on `data_dir` with model and index `name` (None: the embedded default, which it trains
    and indexes on an empty data directory), once it is ready."""
    served = {} if name is None else {"LOGITSEARCH_MODEL": name, "LOGITSEARCH_INDEX": name}
    env = (
        os.environ
        | served
        | {
            "LOGITSEARCH_DATA_DIR": str(data_dir),
            "LOGITSEARCH_PORT": str(port),
            "LOGITSEARCH_DEVICE": "cpu",
            "LOGITSEARCH_NUM_THREADS": str(threads),
            "LOGITSEARCH_LOG_LEVEL": "warning",
            "LOGITSEARCH_MAX_BATCH": "1024",
        }
    )
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the service did not become ready")


def time_per_query(run: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, seconds: float) -> float:
    """Seconds per query, running batches of `batch` queries in a loop for about `seconds` (after a warm-up)."""
    run(queries[:batch])
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done < 3:
        offset = (done * batch) % (len(queries) - batch + 1)
        run(queries[offset : offset + batch])
        done += 1
    return (time.perf_counter() - start) / (done * batch)


def floor_kernel(matrix: np.ndarray, transform: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], object]:
    """One GEMV per query for a single query, else the blocked sgemm of the batch with the matrix, by whichever
    of numpy's BLAS and torch's (MKL on x86) is faster for a batch of 256 on this machine (timed here)."""

    def with_numpy(vectors: np.ndarray) -> object:
        for start in range(0, len(matrix), 65_536):
            product = matrix[start : start + 65_536] @ vectors.T
        return product

    def with_torch(vectors: np.ndarray) -> object:
        rows, columns = torch.from_numpy(matrix), torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
        for start in range(0, len(matrix), 65_536):
            product = torch.mm(rows[start : start + 65_536], columns.T)
        return product

    sample = np.random.default_rng(0).standard_normal((256, matrix.shape[1])).astype(np.float32)
    timings = {}
    for name, gemm in (("numpy", with_numpy), ("torch", with_torch)):
        gemm(sample)
        start = time.perf_counter()
        for _ in range(3):
            gemm(sample)
        timings[name] = (time.perf_counter() - start) / 3 * 1e3
    fastest = min(timings, key=timings.__getitem__)
    logger.info("floor: the batch sgemm of %s (256 queries: numpy %.1f ms, torch %.1f ms)", fastest, *timings.values())
    batch_gemm = with_numpy if fastest == "numpy" else with_torch

    def run(queries: np.ndarray) -> object:
        vectors = transform(queries)
        if len(vectors) == 1:
            return matrix @ vectors[0]
        return batch_gemm(vectors)

    return run


class LeanClient:
    """One keep-alive HTTP/1.1 connection over a bare socket: each request goes out in one `sendall` (head and
    body), the answer is read by its `content-length` and parsed as JSON. Its own cost (~0.1 ms a request, where
    `http.client` spends ~0.4 and httpx over a millisecond) leaves the service's in the figures."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=600)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def post(self, path: str, body: object) -> object:
        """POST `body` as JSON; the answer's JSON."""
        return self.post_bytes(path, json.dumps(body).encode(), "application/json")

    def post_bytes(self, path: str, body: bytes, content_type: str) -> object:
        """POST an encoded body; the answer's JSON. Reconnects once when the server closed the idle connection
        (its keep-alive timeout)."""
        request = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\ncontent-type: {content_type}\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode() + body
        try:
            status, data = self._exchange(request)
        except ConnectionError:
            self.sock.close()
            self.sock = self._connect()
            status, data = self._exchange(request)
        if status != 200:
            raise RuntimeError(f"POST {path}: {status} {data[:200]!r}")
        return json.loads(data)

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one request; its status and body (the server answers with a content-length)."""
        self.sock.sendall(request)
        data = self._receive(b"")
        while (end := data.find(b"\r\n\r\n")) < 0:
            data = self._receive(data)
        head = data[:end].decode("latin-1").lower().split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in head if line.startswith("content-length:"))
        while len(data) < end + 4 + length:
            data = self._receive(data)
        return int(head[0].split()[1]), data[end + 4 : end + 4 + length]

    def _receive(self, data: bytes) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        return data + chunk

    def close(self) -> None:
        self.sock.close()


def http_kernels(client: LeanClient, k: int, metric: str) -> tuple[Callable[[np.ndarray], object], ...]:
    def binary(batch: np.ndarray) -> object:
        encoded = base64.b64encode(np.ascontiguousarray(batch, dtype="<f4").tobytes()).decode()
        return client.post("/v1/search", {"logits_b64": encoded, "shape": list(batch.shape), "k": k, "metric": metric})

    def as_json(batch: np.ndarray) -> object:
        return client.post("/v1/search", {"queries": [{"logits": q.tolist()} for q in batch], "k": k, "metric": metric})

    return binary, as_json


def measure(kernels: dict[str, Callable[[np.ndarray], object]], args: argparse.Namespace, batch: int) -> list[str]:
    """Median ms/query per column and median ratios to raw FAISS and to the floor, over the rounds."""
    queries = (np.random.default_rng(1).standard_normal((1024, args.classes)) * 4).astype(np.float32)
    rounds: list[dict[str, float]] = []
    for _ in range(args.rounds):
        rounds.append({name: time_per_query(run, queries, batch, args.seconds) for name, run in kernels.items()})
    cells = [f"{statistics.median(r[name] for r in rounds) * 1e3:.3f}" for name in COLUMNS]
    for name in ("store", "HTTP binary", "HTTP JSON"):
        for base in ("raw FAISS", "floor"):
            cells.append(f"{statistics.median(r[name] / r[base] for r in rounds):.2f}")
    overhead = statistics.median((r["HTTP binary"] - r["store"]) * batch for r in rounds)  # per request
    cells.append(f"{overhead * 1e3:.3f}")
    return cells


def bench(num_items: int, args: argparse.Namespace) -> list[str]:
    rng = np.random.default_rng(0)
    vectors = (rng.standard_normal((num_items, args.classes)) * 4).astype(np.float32)
    store = FaissIndex(args.classes)
    store.replace_all([f"item-{i}" for i in range(num_items)], vectors, [{}] * num_items)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        name = make_data_dir(Path(tmp), args.classes, vectors)
        server = start_server(Path(tmp), name, args.port, args.threads)
        try:
            client = LeanClient(args.port)
            try:
                for metric in args.metrics:
                    rows += _bench_metric(num_items, vectors, store, client, metric, args)
            finally:
                client.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    return rows


def _bench_metric(
    num_items: int,
    vectors: np.ndarray,
    store: FaissIndex,
    client: LeanClient,
    metric: str,
    args: argparse.Namespace,
) -> list[str]:
    embedding = EMBEDDINGS.get(metric)

    def transform(queries: np.ndarray) -> np.ndarray:
        return queries if embedding is None else embedding.transform_queries(queries, 1.0)

    # ce: FAISS's inner product with the stored log q at T = 1, as the service searched before its scans.
    matrix = vectors if embedding is None else embedding.transform_items(vectors, 1.0)
    raw = faiss.IndexFlatL2(args.classes) if embedding is None else faiss.IndexFlatIP(matrix.shape[1])
    raw.add(matrix)
    binary, as_json = http_kernels(client, args.k, metric)
    kernels: dict[str, Callable[[np.ndarray], object]] = {
        "raw FAISS": lambda q: raw.search(transform(q), args.k),
        "floor": floor_kernel(matrix, transform),
        "store": lambda q: store.search(q.astype(np.float64), args.k, metric=metric),
        "HTTP binary": binary,
        "HTTP JSON": as_json,
    }
    rows = []
    for batch in args.batches:
        cells = measure(kernels, args, batch)
        rows.append(f"| {metric} | {num_items:,} | {batch} | " + " | ".join(cells) + " |")
        logger.info("%s", rows[-1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--metrics", nargs="+", default=["l2", "ce"], choices=["l2", "ce"])
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed loop per column and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_cpu(args.threads)
    torch.set_num_threads(args.threads)
    header = [
        "| metric | N | batch | raw FAISS ms/q | floor ms/q | store ms/q | HTTP binary ms/q | HTTP JSON ms/q "
        "| store / raw | store / floor | binary / raw | binary / floor | JSON / raw | JSON / floor "
        "| binary − store ms/request |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [row for num_items in args.sizes for row in bench(num_items, args)]
    logger.info(
        "C = %d, k = %d, %d threads, faiss %s, %d rounds (medians)\n%s",
        args.classes, args.k, args.threads, faiss.__version__, args.rounds, "\n".join(header + rows),
    )  # fmt: skip


if __name__ == "__main__":
    main()
