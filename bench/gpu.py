"""GPU: the approximate IVF structures against the flat GPU index, recall@10 and throughput, in one prepared run.

For a machine with `faiss-gpu-cu12`, torch with CUDA and one GPU; about 8 minutes end to end on an H200 (at most
~100 GB of host memory and ~60 GB of GPU memory at the defaults). Logits shaped like real ones: rows of the real
EfficientNet-Lite0 outputs in `bench/results/real-networks/` (C = 1000), drawn with replacement on the GPU with
Gaussian noise of 0.3 × each class column's standard deviation (seeded). Two runs:

- `l2` at N = 10M (`--items`): the store's flat index mirrored on the GPU (`GpuIndexFlatL2`) against an IVF-SQ8
  structure trained and filled on the GPU;
- `ce` at T = 1 at N = 2M (`--ce-items`; each float32 copy of 10M × 1000 is 40 GB, and ce needs three): the flat
  GPU inner product over log q against an IVF-SQ8 structure over `[z_c, b_T]`.

Each run installs the structure in a `FaissIndex`, measures its recall ladder as the service does (200 stored items
as queries), then times 1,000 held-out queries (batches of 1,000, and 100 single queries) with the approximate
search (candidates + exact float64 re-rank) and with the exact one, and prints recall@10 against the exact answers.

    python bench/gpu.py                     # the prepared run
    python bench/gpu.py --items 1000000 --ce-items 200000 --nlist 4096   # a quick check
"""

import service  # noqa: F401, I001 - first: it sets OpenBLAS's wait policy, which numpy reads when it loads

import argparse
import logging
import time
from pathlib import Path

import torch  # before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from indexes.ann import AnnOptions, build_structure, row_hashes, sample_rows
from indexes.device import create_gpu_resources
from indexes.faiss_index import FaissIndex

logger = logging.getLogger("bench.gpu")
REAL_LOGITS = Path(__file__).parent / "results" / "real-networks" / "efficientnet-lite0" / "logits.npz"


def shaped_logits(num_rows: int, seed: int, device: torch.device) -> np.ndarray:
    """`(n, 1000)` float32 host array of real rows with per-class noise, drawn on `device` in chunks."""
    real = torch.from_numpy(np.load(REAL_LOGITS)["logits"].astype(np.float32)).to(device)
    scale = 0.3 * real.std(dim=0)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = np.empty((num_rows, real.shape[1]), np.float32)
    for start in range(0, num_rows, 500_000):
        stop = min(start + 500_000, num_rows)
        rows = torch.randint(0, len(real), (stop - start,), device=device, generator=generator)
        noise = torch.randn((stop - start, real.shape[1]), device=device, generator=generator)
        out[start:stop] = (real[rows] + noise * scale).cpu().numpy()
    return out


def qps(run: object, queries: np.ndarray, batch: int) -> float:
    """Queries per second of `run(batch of queries)` over all of `queries` (batch 1: the first 100)."""
    assert callable(run)
    shown = queries if batch > 1 else queries[:100]
    run(shown[:batch])
    began = time.perf_counter()
    for start in range(0, len(shown), batch):
        run(shown[start : start + batch])
    return len(shown) / (time.perf_counter() - began)


def bench(metric: str, num_items: int, args: argparse.Namespace, resources: object, device: torch.device) -> str:
    began = time.perf_counter()
    items = shaped_logits(num_items, 1, device)
    queries = shaped_logits(1000, 2, device).astype(np.float64)
    index = FaissIndex(items.shape[1], gpu_resources=resources)
    ids = [str(i) for i in range(num_items)]
    index.replace_all(ids, items, [{}] * num_items)
    del items
    logger.info("%s: %d items on the GPU flat index in %.0f s", metric, num_items, time.perf_counter() - began)
    options = AnnOptions("ivf", metrics=(metric,), codec=args.codec, nlist=args.nlist)
    built = time.perf_counter()
    structures = {}
    for family in options.families():
        structure = build_structure(options, family, index.vectors, gpu_resources=resources)
        assert structure is not None and structure.gpu is not None
        structures[family] = structure
    build_s = time.perf_counter() - built
    index.install_approximate(options, structures, ids, row_hashes(index.vectors))
    state = index.approximate
    assert state is not None
    temperature = None if metric == "l2" else 1.0
    state.calibrations[(metric, temperature)] = calibration = index.measure_recall(
        metric, temperature, sample_rows(num_items)
    )
    plan = state.plan(metric, 1.0, None)
    exact = [hits.ids for hits in index.search(queries, 10, metric=metric, exact=True).columns()]
    found = index.search(queries, 10, metric=metric)
    recall = np.mean([len(set(a.ids) & set(e)) / 10 for a, e in zip(found.columns(), exact, strict=True)])
    timings = []
    for batch in (1, 1000):
        fast = qps(lambda q: index.search(q, 10, metric=metric), queries, batch)
        slow = qps(lambda q: index.search(q, 10, metric=metric, exact=True), queries, batch)
        timings += [f"{fast:,.0f}", f"{slow:,.0f}", f"{fast / slow:.1f}×"]
    steps = ", ".join(f"{p}:{r:.3f}" for p, _, r in calibration.steps)
    logger.info("%s ladder (nprobe:recall@10) %s", metric, steps)
    chosen = "exact (no step reached the target)" if plan is None else f"nprobe {plan.param}, R {plan.candidates}"
    return (
        f"| {metric} | {num_items:,} | {args.codec} | {args.nlist} | {build_s:.0f} | {chosen} | "
        f"{found.recall_at_10 if found.recall_at_10 is not None else 'exact'} | {recall:.3f} | " + " | ".join(timings) + " |"
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--ce-items", type=int, default=2_000_000)
    parser.add_argument("--nlist", type=int, default=16_384)
    parser.add_argument("--codec", default="sq8", choices=["float32", "float16", "sq8"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    resources = create_gpu_resources("true")
    device = torch.device("cuda")
    rows = [
        "| metric | N | codec | nlist | build s (GPU) | chosen | recall measured | recall@10 vs exact | approx q/s (1) "
        "| exact q/s (1) | speed-up (1) | approx q/s (1000) | exact q/s (1000) | speed-up (1000) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for metric, num_items in (("l2", args.items), ("ce", args.ce_items)):
        rows.append(bench(metric, num_items, args, resources, device))
        logger.info("%s", rows[-1])
    name = torch.cuda.get_device_name(0)
    logger.info("%s, faiss %s, C = 1000, k = 10\n%s", name, faiss.__version__, "\n".join(rows))


if __name__ == "__main__":
    main()
