"""The analyses at Fashion-MNIST scale: label issues against known flipped labels, near-duplicates against an exact
all-pairs check, and the time of each analysis, on the Fashion CNN's outputs.

Trains the Fashion CNN (3 epochs, seeded) into a temporary models directory unless `--models DIR` holds
`fashion-cnn`, embeds all 70,000 photos into a FAISS index, flips the stored label of 2 % of the training photos at
random (seeded), and prints, measured in this one run:

- label-issues: precision and recall at finding the flipped labels — the analysis (cleanlab's confident learning on
  softmax(z / T), the flagged items; and those also contradicted by their neighbours), cleanlab called directly on
  the same probabilities, and a random pick of the same size;
- near-duplicates (js <= threshold among the 10 nearest) against every pair of a 10,000-photo subset;
- the wall time of every analysis over the 70,000 items.

    python bench/analyses.py [--limit N] [--models DIR]      # --limit: photos per split (default all)
"""

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import softmax

from evaluation.analyses import AnalysisOptions, run_analysis
from indexes.durable import DurableIndex
from indexes.metrics import exact_matrix
from models import FASHION_LABELS, TrainConfig, load_classifier, model_exists, train_classifier
from service.catalog.bootstrap import IngestOptions, add_fashion

logger = logging.getLogger("bench.analyses")
FLIP_SHARE, SUBSET = 0.02, 10_000


def _index(models: Path, directory: Path, limit: int | None) -> DurableIndex:
    if not model_exists(models, "fashion-cnn"):
        logger.info("training fashion-cnn (3 epochs) into %s", models)
        config = TrainConfig(name="fashion-cnn", data="fashion-mnist", epochs=3, num_threads=2)
        train_classifier(config, models, device=torch.device("cpu"), progress=False)
    classifier = load_classifier(models, "fashion-cnn", torch.device("cpu"))
    index = DurableIndex.open(
        directory, name="fashion", model_name="fashion-cnn", model_sha256=classifier.spec.sha256, dim=10
    )
    start = time.perf_counter()
    add_fashion(index, classifier, limit=limit, options=IngestOptions(batch_size=512, thumbnails=False))
    logger.info("embedded %d photos in %.0f s", index.count(), time.perf_counter() - start)
    return index


def _precision_recall(found: set[str], truth: set[str]) -> str:
    hit = len(found & truth)
    return f"precision {hit / max(1, len(found)):.3f}, recall {hit / max(1, len(truth)):.3f} ({len(found)} flagged)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="photos per split (default: all 70,000)")
    parser.add_argument("--models", type=Path, help="a models directory holding fashion-cnn (else trained here)")
    parser.add_argument("--threshold", type=float, default=1e-8, help="near-duplicates: js (nats) of a pair at most")
    parser.add_argument("-k", type=int, default=20, help="near-duplicates: neighbours looked at per item")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        index = _index(args.models or Path(scratch) / "models", Path(scratch) / "index", args.limit)
        items = list(index.iter_items())
        rng = np.random.default_rng(0)
        train = [i for i, item in enumerate(items) if item.metadata["split"] == "train"]
        flipped = rng.choice(train, size=round(FLIP_SHARE * len(train)), replace=False)
        ids = [items[i].id for i in flipped]
        metadata = []
        for i in flipped:
            label = (items[i].metadata["label"] + int(rng.integers(1, 10))) % 10
            metadata.append(items[i].metadata | {"label": label, "label_name": FASHION_LABELS[label]})
        index.upsert(ids, np.stack([items[i].logits for i in flipped]), metadata)
        truth = set(ids)
        logger.info(
            "%d items, %d training labels flipped (seed 0); hardware: see the results file", len(items), len(truth)
        )

        times: dict[str, float] = {}

        def timed(kind: str, options: AnalysisOptions) -> object:
            start = time.perf_counter()
            result = run_analysis(kind, index, options, list(FASHION_LABELS))
            times[kind] = time.perf_counter() - start
            return result

        issues = timed("label-issues", AnalysisOptions(limit=100_000, k=10))
        rows = issues.rows  # type: ignore[attr-defined]
        flagged = {row["id"] for row in rows}
        both = {row["id"] for row in rows if row["neighbour_agreement"] < 0.5}
        logger.info("label-issues (cleanlab at T = 1, then neighbours by js): %s", _precision_recall(flagged, truth))
        logger.info("  ... and contradicted by most of their 10 neighbours: %s", _precision_recall(both, truth))

        from cleanlab.filter import find_label_issues

        logits = np.stack([item.logits for item in index.iter_items()])
        stored_ids = [item.id for item in index.iter_items()]
        labels = np.array([item.metadata["label"] for item in index.iter_items()])
        alone = find_label_issues(
            labels, softmax(logits.astype(np.float64), axis=1), return_indices_ranked_by="self_confidence"
        )
        logger.info(
            "cleanlab alone on the same probabilities: %s", _precision_recall({stored_ids[i] for i in alone}, truth)
        )
        guess = set(rng.choice(stored_ids, size=len(flagged), replace=False).tolist())
        logger.info("random pick of the same size: %s", _precision_recall(guess, truth))

        subset = sorted(rng.choice(len(stored_ids), size=min(SUBSET, len(stored_ids)), replace=False).tolist())
        chosen = [stored_ids[i] for i in subset]
        exact: set[tuple[str, str]] = set()
        for start in range(0, len(subset), 1000):
            block = exact_matrix("js", logits[subset[start : start + 1000]], logits[subset], 1.0)
            for a, b in zip(*np.nonzero(block <= args.threshold), strict=True):
                i, j = start + int(a), int(b)
                if i < j:
                    exact.add((chosen[i], chosen[j]))
        found = timed(
            "near-duplicates",
            AnalysisOptions(threshold=args.threshold, k=args.k, limit=100_000),
        )
        pairs = {tuple(sorted((row["id"], row["other"]))) for row in found.rows}  # type: ignore[attr-defined]
        exact = {tuple(sorted(pair)) for pair in exact}
        inside = {pair for pair in pairs if pair[0] in set(chosen) and pair[1] in set(chosen)}
        logger.info(
            "near-duplicates (js <= %g, k = %d): %d pairs over all items; on a %d-photo subset the exact all-pairs "
            "check finds %d pairs, the analysis (over all items) %d of them (recall %.3f) and %d others",
            args.threshold, args.k, len(pairs), len(subset), len(exact), len(exact & inside),
            len(exact & inside) / max(1, len(exact)), len(inside - exact),
        )  # fmt: skip
        for kind, options in (
            ("uncertain", AnalysisOptions(limit=100)),
            ("confusion", AnalysisOptions(limit=100)),
            ("distance-matrix", AnalysisOptions(filter={"split": "test", "label": 3}, max_items=1000, metric="js")),
            ("calibration", AnalysisOptions(queries=100)),
        ):
            try:
                timed(kind, options)
            except Exception as exc:  # a bound refused, say: report it and go on
                logger.info("%s: %s", kind, exc)
        for kind, seconds in times.items():
            logger.info("time %-16s %7.2f s over %d items", kind, seconds, len(stored_ids))
        index.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
