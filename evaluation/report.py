"""The evaluation report of a served model and index: every number as JSON, plus Markdown and PNG plots.

`evaluate_store` runs the three sections (ranking agreement with CE, pairwise correlations between measures,
separability) and returns the JSON-ready report; `write_report` writes ``report.json``, ``report.md`` and the
plots. The report holds no timestamps or timings, so the same seed on the same index gives the same file.
"""

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy

from indexes.store import VectorStore
from indexes.validation import check_vectors
from models.spec import ModelSpec

from .dataset import ItemSet, QuerySplit, load_items, rank_all, split_queries
from .evaluator import RankingConfig, RetrievalEvaluator
from .markdown import render_markdown
from .options import EvaluationOptions
from .pairwise import correlate_measures
from .separability import measure_separability, trajectory_rows

logger = logging.getLogger(__name__)

DEFINITIONS = {
    "ground_truth": "exact CE(softmax(x/T), softmax(z/T)) of the query x against every ranked item z",
    "spearman": "per query, Spearman correlation of the metric's distances with CE over all ranked items",
    "kendall": "Kendall tau-b over seeded samples of kendall_items ranked items and kendall_queries queries",
    "overlap_at_k": "|top-k(metric) ∩ top-k(CE)| / k",
    "recall_at_k": "share of queries whose CE nearest neighbour is in the metric's top-k",
    "ndcg_at_k": "nDCG@k with relevance k - r + 1 for the item at CE rank r <= k, 0 beyond",
    "label_precision_at_k": "share of the metric's top-k with the query's metadata label",
    "p_inter_gt_intra": "P(inter-class L2 distance > intra-class L2 distance) between logits (ties: not greater)",
    "std": "population standard deviation over queries",
}


def _ranking_inputs(
    items: ItemSet, options: EvaluationOptions, query_logits: npt.ArrayLike | None
) -> tuple[np.ndarray, np.ndarray | None, QuerySplit]:
    """Query logits, their labels and the split: sampled index items, or the caller's logits against the index."""
    num_items = options.ranked_items(items.logits.shape[1])
    if query_logits is None:
        split = split_queries(items, options.num_queries, num_items, options.seed)
        return items.logits[split.queries], items.labels[split.queries], split
    queries = check_vectors(query_logits, items.logits.shape[1], name="query logits")
    ranked = rank_all(items, num_items, options.seed)
    source = f"{len(queries)} caller-supplied query logits, each ranked against {ranked.size} items"
    if ranked.size < len(items.ids):
        source += f" (a seeded sample of the {len(items.ids)} indexed items)"
    return queries, None, QuerySplit(queries=np.empty(0, np.int64), ranked=ranked, source=source)


def _config(
    store: VectorStore, spec: ModelSpec, options: EvaluationOptions, split: QuerySplit, num_queries: int
) -> dict[str, Any]:
    return {
        "model": {"name": spec.name, "sha256": spec.sha256, "arch": spec.arch, "num_classes": spec.num_classes},
        "index": {"name": store.name, "count": store.count(), "dim": store.dim},
        "seed": options.seed,
        "temperatures": list(options.temperatures),
        "k": options.k,
        "metrics": list(options.metrics),
        "options": options.to_dict(),
        "sampled": {
            "queries": split.source,
            "num_queries": num_queries,
            "num_ranked_items": int(split.ranked.size),
            "kendall_items": min(options.kendall_items, int(split.ranked.size)),
            "kendall_queries": min(options.kendall_queries, num_queries),
            "pairwise_pairs": options.pairwise_pairs(store.dim),
            "separability_pairs": options.separability_pairs,
        },
        "definitions": DEFINITIONS,
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
    }


def evaluate_store(
    store: VectorStore,
    spec: ModelSpec,
    options: EvaluationOptions | None = None,
    query_logits: npt.ArrayLike | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate the store's items under the served model's spec; see the module docstring.

    Args:
        store: the served index (read through ``list``; nothing is written).
        spec: the served model's spec (name, sha256 and the per-epoch training trajectory).
        options: what to compute and sample; default `EvaluationOptions()`.
        query_logits: ``(q, C)`` queries to use instead of sampled index items (ranked against every item).
        progress: show tqdm bars.

    Returns:
        The JSON-ready report: ``config``, ``ranking``, ``reference``, ``pairwise``, ``separability``,
        ``separability_index``, ``primary_metric``, ``notes``.

    Raises:
        EvaluationConfigError: too few items, or k above the number of ranked items.
        InvalidInputError: query logits of the wrong shape or with non-finite values.
    """
    options = options or EvaluationOptions()
    started = time.perf_counter()
    items = load_items(store)
    queries, query_labels, split = _ranking_inputs(items, options, query_logits)
    config = RankingConfig(
        options.k, options.temperatures, options.metrics, options.kendall_items, options.kendall_queries, options.seed
    )
    evaluator = RetrievalEvaluator(items.logits[split.ranked], config, item_labels=items.labels[split.ranked])
    rows, reference = evaluator.evaluate(queries, query_labels, progress=progress)
    logger.info("ranking agreement of %d queries in %.1f s", len(queries), time.perf_counter() - started)
    num_pairs = options.pairwise_pairs(items.logits.shape[1])
    pairwise = correlate_measures(items.logits, options.temperatures, num_pairs, options.seed)
    index_separability = measure_separability(
        items.logits, items.labels, options.separability_pairs, options.histogram_bins, options.seed
    )
    trajectory = trajectory_rows(spec.training)
    primary = next(
        r for r in rows if evaluator.key(r.metric, r.temperature, "spearman_mean") == evaluator.primary_metric
    )
    logger.info("evaluation finished in %.1f s", time.perf_counter() - started)
    return {
        "config": _config(store, spec, options, split, len(queries)),
        "primary_metric": {"name": evaluator.primary_metric, "value": primary.spearman_mean},
        "ranking": [row.to_dict() for row in rows],
        "reference": reference,
        "pairwise": pairwise,
        "separability": trajectory,
        "separability_index": index_separability,
        "notes": _notes(items, reference, trajectory, index_separability, query_logits is not None),
    }


def _notes(
    items: ItemSet,
    reference: list[dict[str, Any]],
    trajectory: list[dict[str, Any]],
    index_separability: dict[str, Any] | None,
    external: bool,
) -> list[str]:
    notes = [
        "l2, l2_centered and cosine work on raw logits and rank the same way at every temperature; "
        "the CE ground truth changes with T, so their agreement with it does too."
    ]
    if not trajectory:
        notes.append(
            "separability: the served model's spec records no per-epoch p_inter_gt_intra (training.trajectory), "
            "so the list is empty; retrain the model with a version that logs it to get the curve."
        )
    if index_separability is None:
        notes.append("separability_index: the index needs labeled items of at least 2 classes; none computed.")
    unresolved = [r["temperature"] for r in reference if r["ce_top_k_below_resolution"]]
    if unresolved:
        notes.append(
            f"At T = {', '.join(f'{t:g}' for t in unresolved)} some queries' CE top-k values are below 1e-300 nats "
            "(see reference.ce_top_k_below_resolution), past the guaranteed precision: values float64 cannot hold "
            "tie there, so the top-k statistics may reflect ties."
        )
    if not items.has_labels or external:
        notes.append("label_precision_at_k is null: the queries have no 'label' metadata to compare with.")
    return notes


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write ``report.json``, ``report.md`` and the PNG plots into ``out_dir`` (created if needed).

    Returns:
        The paths written.
    """
    from .plots import write_plots  # matplotlib is only needed here, not by the service

    out_dir.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out_dir)
    json_path, markdown_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    markdown_path.write_text(render_markdown(report, [p.name for p in plots]), encoding="utf-8")
    logger.info("wrote %s, %s and %d plots", json_path, markdown_path, len(plots))
    return [json_path, markdown_path, *plots]
