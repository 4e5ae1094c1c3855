"""RetrievalEvaluator against slow oracles, and its invariants (KL ranks like CE, centred L2 at high T)."""

import numpy as np
import pytest
from scipy import stats

from evaluation.errors import EvaluationConfigError
from evaluation.evaluator import RankingConfig, RetrievalEvaluator
from evaluation.measures import compute_distances
from indexes.errors import InvalidInputError
from tests.evaluation.synthetic import make_logits


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _slow_ce(query: np.ndarray, items: np.ndarray, t: float) -> np.ndarray:
    p = _softmax(query / t)
    return np.array([-np.sum(p * np.log(_softmax(z / t))) for z in items])


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    items, item_labels = make_logits(rng, 120, 4)
    queries, query_labels = make_logits(rng, 9, 4)
    return items.astype(np.float64), item_labels, queries.astype(np.float64), query_labels


def test_evaluator_matches_slow_oracle(data: tuple[np.ndarray, ...]) -> None:
    items, item_labels, queries, query_labels = data
    config = RankingConfig(k=5, temperatures=(1.0, 4.0), metrics=("l2", "cosine"), kendall_items=10_000)
    rows, reference = RetrievalEvaluator(items, config, item_labels=item_labels).evaluate(queries, query_labels)
    assert [(r.metric, r.temperature) for r in rows] == [("l2", 1.0), ("cosine", 1.0), ("l2", 4.0), ("cosine", 4.0)]
    for row in rows:
        spearman, kendall, overlap, precision = [], [], [], []
        for query, label in zip(queries, query_labels, strict=True):
            ce = _slow_ce(query, items, row.temperature)
            if row.metric == "l2":
                d = np.linalg.norm(items - query, axis=1)
            else:
                d = 1 - items @ query / (np.linalg.norm(items, axis=1) * np.linalg.norm(query))
            spearman.append(stats.spearmanr(ce, d).statistic)
            kendall.append(stats.kendalltau(ce, d).statistic)
            found, truth = set(np.argsort(d)[:5]), set(np.argsort(ce)[:5])
            overlap.append(len(found & truth) / 5)
            precision.append(np.mean(item_labels[np.argsort(d)[:5]] == label))
        assert row.spearman_mean == pytest.approx(np.mean(spearman), abs=1e-9)
        assert row.spearman_std == pytest.approx(np.std(spearman), abs=1e-9)
        assert row.kendall_mean == pytest.approx(np.mean(kendall), abs=1e-9)
        assert row.overlap_at_k == pytest.approx(np.mean(overlap))
        assert row.label_precision_at_k == pytest.approx(np.mean(precision))
    assert [r["temperature"] for r in reference] == [1.0, 4.0]


def test_kendall_is_computed_for_a_sample_of_queries(data: tuple[np.ndarray, ...]) -> None:
    items, _, queries, _ = data
    config = RankingConfig(temperatures=(2.0,), metrics=("tri",), kendall_queries=1, kendall_items=10_000)
    (row,), _ = RetrievalEvaluator(items, config).evaluate(queries)
    taus = [
        stats.kendalltau(_slow_ce(q, items, 2.0), compute_distances(("tri",), q[None], items, 2.0)["tri"][0])
        for q in queries
    ]
    assert row.kendall_std == 0.0 and min(abs(row.kendall_mean - t.statistic) for t in taus) < 1e-12
    assert row.num_queries == 9 and row.spearman_std is not None and row.spearman_std > 0


def test_kl_ranks_exactly_like_cross_entropy(data: tuple[np.ndarray, ...]) -> None:
    items, _, queries, _ = data
    evaluator = RetrievalEvaluator(items, RankingConfig(k=10, temperatures=(0.5, 1.0, 3.0), metrics=("kl",)))
    for row in evaluator.evaluate(queries)[0]:
        # KL(p||q) = CE(p, q) - H(p): for one query the entropy is a constant, so both rank items identically.
        assert row.spearman_mean == pytest.approx(1.0) and row.overlap_at_k == 1.0 and row.ndcg_at_k == 1.0
        assert row.label_precision_at_k is None


def test_centered_l2_follows_cross_entropy_at_high_temperature(data: tuple[np.ndarray, ...]) -> None:
    items, _, queries, _ = data
    config = RankingConfig(temperatures=(1.0, 1000.0), metrics=("l2_centered",))
    low, high = RetrievalEvaluator(items, config).evaluate(queries)[0]
    # CE = log C + (‖z_c − x_c‖² − ‖x_c‖²) / (2 C T²) + O(T⁻³): its ranking becomes the centred-L2 ranking.
    assert high.spearman_mean is not None and high.spearman_mean > 0.999
    assert low.spearman_mean is not None and low.spearman_mean < high.spearman_mean


def test_evaluator_returns_prefixed_scores_and_primary_metric(data: tuple[np.ndarray, ...]) -> None:
    items, item_labels, queries, query_labels = data
    evaluator = RetrievalEvaluator(items, RankingConfig(temperatures=(0.5, 1.0)), item_labels=item_labels, name="dev")
    scores = evaluator(queries, query_labels)
    assert evaluator.primary_metric == "dev_l2_t1_spearman_mean"
    assert evaluator.primary_metric in scores
    assert all(key.startswith("dev_") for key in scores)
    assert "dev_tri_t0.5_ndcg_at_k" in scores and "dev_cosine_t1_label_precision_at_k_std" in scores


def test_evaluator_batches_give_the_same_numbers(data: tuple[np.ndarray, ...]) -> None:
    items, item_labels, queries, query_labels = data
    one = RetrievalEvaluator(items, RankingConfig(batch_elements=1), item_labels=item_labels)(queries, query_labels)
    all_ = RetrievalEvaluator(items, RankingConfig(), item_labels=item_labels)(queries, query_labels)
    assert one.keys() == all_.keys()
    for key, value in one.items():
        assert value == pytest.approx(all_[key], abs=1e-12)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (RankingConfig(metrics=("l2", "hamming")), "unknown metric 'hamming'"),
        (RankingConfig(metrics=()), "non-empty"),
        (RankingConfig(temperatures=(1.0, 0.0)), "temperature"),
        (RankingConfig(temperatures=(float("nan"),)), "temperature"),
        (RankingConfig(k=0), "k must be"),
        (RankingConfig(k=121), "k must be"),
    ],
)
def test_evaluator_refuses_bad_config(data: tuple[np.ndarray, ...], config: RankingConfig, message: str) -> None:
    with pytest.raises(EvaluationConfigError, match=message) as info:
        RetrievalEvaluator(data[0], config)
    assert isinstance(info.value, InvalidInputError)  # the service maps it to 422


def test_compute_distances_definitions(rng: np.random.Generator) -> None:
    x, z = rng.normal(size=(3, 6)), rng.normal(size=(4, 6))
    d = compute_distances(("l2", "l2_centered", "cosine"), x, z, 1.0)
    np.testing.assert_allclose(d["l2"], np.linalg.norm(x[:, None] - z[None], axis=2))
    xc, zc = x - x.mean(1, keepdims=True), z - z.mean(1, keepdims=True)
    np.testing.assert_allclose(d["l2_centered"], np.linalg.norm(xc[:, None] - zc[None], axis=2))
    cos = (x @ z.T) / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(z, axis=1))
    np.testing.assert_allclose(d["cosine"], 1 - cos)
