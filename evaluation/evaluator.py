"""`RetrievalEvaluator`: how closely each search metric's ranking follows the exact cross-entropy ranking."""

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from indexes.deadline import check_deadline
from indexes.divergences import as_matrix
from indexes.metrics import order_breaking_ties

from .errors import EvaluationConfigError
from .measures import RANKING_METRICS, TEMPERATURE_FREE, check_metrics, compute_distances, cross_entropy
from .options import MAX_K, check_temperatures
from .ranking import (
    kendall_rows,
    label_precision_at_k,
    ndcg_at_k,
    overlap_at_k,
    pearson_rows,
    rank_rows,
    recall_at_k,
    top_k,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: CE values (nats) below this are past the guaranteed precision (relative 1e-6 down to 1e-300; float64 ends
#: at ~1e-308): a k-th CE this small means a top-k partly decided by ties of values float64 cannot hold.
CE_RESOLUTION = 1e-300
#: Per-query statistics, in the order of `RankingRow`'s mean/std pairs.
STATISTICS: tuple[str, ...] = (
    "spearman",
    "kendall",
    "overlap_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "label_precision_at_k",
)


@dataclass(frozen=True)
class RankingConfig:
    """What `RetrievalEvaluator` computes.

    Attributes:
        k: neighbours for the top-k statistics (1..1000; at most the number of ranked items).
        temperatures: softmax temperatures of the CE ground truth (and of kl, js, tri).
        metrics: names from `RANKING_METRICS`.
        kendall_items: Kendall's tau over a seeded sample of this many ranked items (all when fewer).
        kendall_queries: ... and for a seeded sample of this many queries (scipy's tau costs ~0.5 ms per query,
            metric and temperature, the largest share of the work on small indexes).
        seed: seeds the Kendall sample.
        batch_elements: queries are processed in batches of about this many (query, item) pairs.
    """

    k: int = 10
    temperatures: tuple[float, ...] = (1.0,)
    metrics: tuple[str, ...] = RANKING_METRICS
    kendall_items: int = 2000
    kendall_queries: int = 50
    seed: int = 0
    batch_elements: int = 1 << 21


@dataclass(frozen=True)
class RankingRow:
    """Agreement of one metric with the CE ranking at one temperature: means and (population) std over queries.

    ``label_precision_at_k`` is None when no query has a label; ``*_std`` are the spreads of the ``*_mean`` or
    plain-named means next to them.
    """

    metric: str
    temperature: float
    k: int
    num_queries: int
    spearman_mean: float | None
    spearman_std: float | None
    kendall_mean: float | None
    kendall_std: float | None
    overlap_at_k: float | None
    overlap_at_k_std: float | None
    recall_at_k: float | None
    recall_at_k_std: float | None
    ndcg_at_k: float | None
    ndcg_at_k_std: float | None
    label_precision_at_k: float | None
    label_precision_at_k_std: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary(values: list[FloatArray]) -> tuple[float | None, float | None]:
    """Mean and std of the non-NaN per-query values, None when there are none."""
    array = np.concatenate(values) if values else np.empty(0)
    array = array[~np.isnan(array)]
    return (float(array.mean()), float(array.std())) if array.size else (None, None)


class RetrievalEvaluator:
    """Ranking agreement of search metrics with the exact CE ranking (sentence-transformers evaluator style).

    For each query ``x`` and temperature T the ground truth is ``CE(softmax(x / T), softmax(z / T))`` over every
    item ``z``, computed by `evaluation.measures.cross_entropy`. Each metric's distances to the same items give
    per-query Spearman (all items) and Kendall (seeded samples of ``kendall_items`` items and ``kendall_queries``
    queries) correlations with it, overlap@k, recall@k and nDCG@k against the CE top-k (see `evaluation.ranking`),
    and label precision@k.

    Example:
        >>> evaluator = RetrievalEvaluator(items, RankingConfig(temperatures=(1.0, 8.0)), item_labels=labels)
        >>> scores = evaluator(queries, query_labels)
        >>> scores[evaluator.primary_metric]  # mean Spearman of l2 vs CE at T = 1
    """

    def __init__(
        self,
        items: npt.ArrayLike,
        config: RankingConfig | None = None,
        item_labels: npt.ArrayLike | None = None,
        name: str = "ce_ranking",
    ) -> None:
        """Hold the ranked items and draw the Kendall sample.

        Args:
            items: ``(n, C)`` logits every query is ranked against (exclude the queries themselves).
            config: what to compute; default `RankingConfig()`.
            item_labels: ``(n,)`` int label codes, negative for unlabeled items; None = no labels.
            name: prefix of every key `__call__` returns.

        Raises:
            EvaluationConfigError: bad options, fewer than 2 items, or k above the number of items.
        """
        self.config = config or RankingConfig()
        self.items = as_matrix(items, "items")
        self.temperatures = check_temperatures(self.config.temperatures)
        self.metrics = check_metrics(self.config.metrics)
        num_items = self.items.shape[0]
        if num_items < 2 or not 1 <= self.config.k <= min(num_items, MAX_K):
            raise EvaluationConfigError(
                f"k must be between 1 and the number of ranked items ({num_items}, at most {MAX_K}), got {self.config.k}"
            )
        labels = np.full(num_items, -1) if item_labels is None else np.asarray(item_labels)
        self.item_labels: IntArray = labels.astype(np.int64).reshape(num_items)
        rng = np.random.default_rng([self.config.seed, 2])
        sample = min(self.config.kendall_items, num_items)
        self.kendall_columns: IntArray = np.sort(rng.choice(num_items, sample, replace=False)).astype(np.int64)
        self.name = name

    @property
    def primary_metric(self) -> str:
        """Key of the headline number: mean Spearman of the first metric at T = 1 (or the first temperature)."""
        temperature = 1.0 if 1.0 in self.temperatures else self.temperatures[0]
        return self.key(self.metrics[0], temperature, "spearman_mean")

    def key(self, metric: str, temperature: float, statistic: str) -> str:
        """The name-prefixed key of one number, e.g. ``ce_ranking_l2_t8_spearman_mean``."""
        return f"{self.name}_{metric}_t{temperature:g}_{statistic}"

    def __call__(self, queries: npt.ArrayLike, query_labels: npt.ArrayLike | None = None) -> dict[str, float]:
        """Evaluate and flatten every number of every row into ``{key: value}`` (None values left out).

        Args:
            queries: ``(q, C)`` logits.
            query_labels: ``(q,)`` int label codes (negative = none); None = no labels.
        """
        rows, _ = self.evaluate(queries, query_labels)
        scores: dict[str, float] = {}
        for row in rows:
            for field, value in row.to_dict().items():
                if field not in ("metric", "temperature", "k", "num_queries") and value is not None:
                    scores[self.key(row.metric, row.temperature, field)] = value
        return scores

    def evaluate(
        self, queries: npt.ArrayLike, query_labels: npt.ArrayLike | None = None, progress: bool = False
    ) -> tuple[list[RankingRow], list[dict[str, Any]]]:
        """Rows per (metric, temperature), and the CE ranking's own label precision per temperature.

        Args:
            queries: ``(q, C)`` logits.
            query_labels: ``(q,)`` int label codes (negative = none); None = no labels.
            progress: show a tqdm bar.

        Returns:
            ``(rows, reference)``: `RankingRow` s in (temperature, metric) order, and for the CE ranking itself
            ``[{"temperature", "k", "label_precision_at_k", "label_precision_at_k_std", "ce_top_k_below_resolution"}]``,
            the last being the share of queries whose k-th CE value is below `CE_RESOLUTION`.
        """
        x = as_matrix(queries, "queries")
        labels = np.full(len(x), -1) if query_labels is None else np.asarray(query_labels)
        labels = labels.astype(np.int64).reshape(len(x))
        scores: dict[tuple[str, float, str], list[FloatArray]] = defaultdict(list)
        batch = max(1, self.config.batch_elements // self.items.shape[0])
        total = len(x) * len(self.temperatures)
        kendall = np.zeros(len(x), dtype=bool)
        kendall[np.random.default_rng([self.config.seed, 5]).permutation(len(x))[: self.config.kendall_queries]] = True
        with tqdm(total=total, desc="ranking vs CE", unit="query", disable=not progress) as bar:
            for start in range(0, len(x), batch):
                check_deadline()
                rows = slice(start, start + batch)
                self._score_batch(x[rows], labels[rows], kendall[rows], scores, bar)
        return self._rows(len(x), scores), self._reference(scores)

    def _score_batch(
        self,
        x: FloatArray,
        labels: IntArray,
        kendall: npt.NDArray[np.bool_],
        scores: dict[tuple[str, float, str], list[FloatArray]],
        bar: Any,
    ) -> None:
        """Add the per-query statistics of one batch of queries; Kendall only where ``kendall`` is True."""
        fixed_names = [m for m in self.metrics if m in TEMPERATURE_FREE]
        fixed = {m: self._prepare(d) for m, d in compute_distances(fixed_names, x, self.items, 1.0).items()}
        varying = [m for m in self.metrics if m not in TEMPERATURE_FREE]
        for t in self.temperatures:
            check_deadline()
            truth = self._prepare(cross_entropy(x, self.items, t))
            scores["ce", t, "label_precision_at_k"].append(label_precision_at_k(truth[2], self.item_labels, labels))
            kth = np.take_along_axis(truth[0], truth[2][:, -1:], axis=1)[:, 0]
            scores["ce", t, "below_resolution"].append((kth < CE_RESOLUTION).astype(np.float64))
            distances = compute_distances(varying, x, self.items, t)
            prepared = fixed | {
                m: self._prepare(_break_saturated_ties(m, d, x, self.items, t)) for m, d in distances.items()
            }
            for metric, ranked in prepared.items():
                for statistic, values in self._compare(truth, ranked, labels, kendall).items():
                    scores[metric, t, statistic].append(values)
            bar.update(len(x))

    def _prepare(self, distances: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
        """``(q, n)`` distances -> (distances, their average ranks, the top-k positions)."""
        return distances, rank_rows(distances), top_k(distances, self.config.k)

    def _compare(
        self,
        truth: tuple[FloatArray, FloatArray, IntArray],
        ranked: tuple[FloatArray, FloatArray, IntArray],
        labels: IntArray,
        kendall: npt.NDArray[np.bool_],
    ) -> dict[str, FloatArray]:
        """Per-query statistics of one metric against the CE ground truth: ``{statistic: (q,)}`` (NaN = not sampled)."""
        tau = np.full(len(labels), np.nan)
        sampled = np.ix_(kendall, self.kendall_columns)
        if kendall.any():
            tau[kendall] = kendall_rows(truth[0][sampled], ranked[0][sampled])
        return {
            "spearman": pearson_rows(truth[1], ranked[1]),  # Pearson of average ranks = Spearman
            "kendall": tau,
            "overlap_at_k": overlap_at_k(ranked[2], truth[2]),
            "recall_at_k": recall_at_k(ranked[2], truth[2]),
            "ndcg_at_k": ndcg_at_k(ranked[2], truth[2]),
            "label_precision_at_k": label_precision_at_k(ranked[2], self.item_labels, labels),
        }

    def _rows(self, num_queries: int, scores: dict[tuple[str, float, str], list[FloatArray]]) -> list[RankingRow]:
        return [self._row(metric, t, num_queries, scores) for t in self.temperatures for metric in self.metrics]

    def _row(
        self, metric: str, t: float, num_queries: int, scores: dict[tuple[str, float, str], list[FloatArray]]
    ) -> RankingRow:
        s = {statistic: _summary(scores[metric, t, statistic]) for statistic in STATISTICS}
        return RankingRow(
            metric=metric,
            temperature=t,
            k=self.config.k,
            num_queries=num_queries,
            spearman_mean=s["spearman"][0],
            spearman_std=s["spearman"][1],
            kendall_mean=s["kendall"][0],
            kendall_std=s["kendall"][1],
            overlap_at_k=s["overlap_at_k"][0],
            overlap_at_k_std=s["overlap_at_k"][1],
            recall_at_k=s["recall_at_k"][0],
            recall_at_k_std=s["recall_at_k"][1],
            ndcg_at_k=s["ndcg_at_k"][0],
            ndcg_at_k_std=s["ndcg_at_k"][1],
            label_precision_at_k=s["label_precision_at_k"][0],
            label_precision_at_k_std=s["label_precision_at_k"][1],
        )

    def _reference(self, scores: dict[tuple[str, float, str], list[FloatArray]]) -> list[dict[str, Any]]:
        rows = []
        for t in self.temperatures:
            mean, std = _summary(scores["ce", t, "label_precision_at_k"])
            below, _ = _summary(scores["ce", t, "below_resolution"])
            rows.append(
                {
                    "temperature": t,
                    "k": self.config.k,
                    "label_precision_at_k": mean,
                    "label_precision_at_k_std": std,
                    "ce_top_k_below_resolution": below,
                }
            )
        return rows


def _break_saturated_ties(
    metric: str, distances: FloatArray, queries: FloatArray, items: FloatArray, temperature: float
) -> FloatArray:
    """`js` and `tri` as ranks in which values that tie in float64 are ordered by their true order.

    At low T most pairs have `js == ln 2` and `tri == 2` in float64; their complements, computed in log space
    (`indexes.metrics.order_breaking_ties`), still order them as a search does. Other metrics pass through.

    Returns:
        `(q, n)`: the distances, or for js/tri the rank of each item (0 = closest) with the saturated ties broken.
    """
    if metric not in ("js", "tri"):
        return distances
    ranks = np.empty_like(distances)
    for i, row in enumerate(distances):
        ranks[i, order_breaking_ties(metric, row, queries[i], items, temperature)] = np.arange(row.size)
    return ranks
