"""Time `logitsearch evaluate` (`evaluation.evaluate_store`) on a large synthetic index, against a baseline.

N classifier-like logits (C classes, 20 % marked ``split == "test"``) go into a `DurableIndex` in a temporary
directory; the full default evaluation (200 queries, 9 temperatures, 6 metrics, Kendall over 2000 items, 10k
pairs) runs over it. The baseline, measured in the same run, is the bare CE ground truth alone: one
``P @ logQ.T`` per query batch and temperature, no ranking. Reported as seconds and as a ratio to that baseline.

    python bench/evaluate.py                          # N = 100k, C = 10
    python bench/evaluate.py --num-items 20000 --classes 100
"""

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from evaluation import EvaluationOptions, evaluate_store
from evaluation.dataset import load_items, split_queries
from evaluation.measures import cross_entropy
from indexes.durable import DurableIndex
from models import ModelSpec

logger = logging.getLogger("bench.evaluate")


def make_index(root: Path, num_items: int, num_classes: int, seed: int) -> tuple[DurableIndex, ModelSpec]:
    """An index of clustered, confident-classifier-like logits with ``label`` and ``split`` metadata."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=num_items)
    centers = 8.0 * np.eye(num_classes) + rng.normal(scale=0.5, size=(num_classes, num_classes))
    logits = (centers[labels] + rng.normal(scale=2.0, size=(num_items, num_classes))).astype(np.float32)
    split = np.where(rng.random(num_items) < 0.2, "test", "train")
    spec = ModelSpec(
        name=f"bench-c{num_classes}",
        arch="mlp",
        num_classes=num_classes,
        labels=tuple(map(str, range(num_classes))),
        input_size=(8, 8),
        channels=1,
        mean=(0.5,),
        std=(0.25,),
        sha256="0" * 64,
    )
    index = DurableIndex.open(root, name="bench", model_name=spec.name, model_sha256=spec.sha256, dim=num_classes)
    for start in range(0, num_items, 50_000):
        stop = min(start + 50_000, num_items)
        metadata = [{"label": int(labels[i]), "split": str(split[i])} for i in range(start, stop)]
        index.upsert([f"item-{i}" for i in range(start, stop)], logits[start:stop], metadata)
    return index, spec


def time_baseline(index: DurableIndex, options: EvaluationOptions) -> float:
    """Seconds for the CE ground-truth matrices alone, batched as the evaluator batches them."""
    items = load_items(index)
    split = split_queries(items, options.num_queries, options.num_items, options.seed)
    queries, ranked = items.logits[split.queries], items.logits[split.ranked]
    batch = max(1, (1 << 21) // len(ranked))
    started = time.perf_counter()
    for t in options.temperatures:
        for start in range(0, len(queries), batch):
            cross_entropy(queries[start : start + batch], ranked, t)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-items", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--num-queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = EvaluationOptions(num_queries=args.num_queries, seed=args.seed)
    with tempfile.TemporaryDirectory() as root:
        index, spec = make_index(Path(root), args.num_items, args.classes, args.seed)
        baseline = time_baseline(index, options)
        started = time.perf_counter()
        report = evaluate_store(index, spec, options, progress=True)
        elapsed = time.perf_counter() - started
        index.close()
    logger.info(
        "N = %d, C = %d, %d queries x %d temperatures: evaluation %.1f s, CE ground truth alone %.1f s (%.1fx); %s",
        args.num_items,
        args.classes,
        report["ranking"][0]["num_queries"],
        len(options.temperatures),
        elapsed,
        baseline,
        elapsed / baseline,
        report["config"]["sampled"]["queries"],
    )


if __name__ == "__main__":
    main()
