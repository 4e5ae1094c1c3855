"""The analyses (`evaluation.analyses`) on real stores against independent references: numpy and scipy brute
force, cleanlab called directly on the same probabilities, scikit-learn's confusion matrix."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import confusion_matrix

from evaluation.analyses import AnalysisOptions, run_analysis
from evaluation.analyses.calibration import TEMPERATURES, reaches_at
from indexes.errors import InvalidInputError
from indexes.store import VectorStore
from tests.helpers import brute_force, store_of_kind

C = 4
LABELS = ["ant", "bee", "cow", "dog"]


def _items(n: int = 120, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    """Four classes of logits; every 15th item's label is flipped; items 0-2 have near copies (duplicates)."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, C, n)
    logits = rng.standard_normal((n, C)).astype(np.float32)
    logits[np.arange(n), classes] += 4.0
    for i in range(3):
        logits[n - 1 - i] = logits[i] + np.float32(1e-3) * rng.standard_normal(C).astype(np.float32)
    labels = classes.copy()
    labels[::15] = (labels[::15] + 1) % C
    metadata = [{"label": int(labels[i]), "name": LABELS[int(labels[i])], "half": i % 2} for i in range(n)]
    return [f"x{i:03d}" for i in range(n)], logits, metadata


@pytest.fixture(params=["faiss", "pgvector"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    store = store_of_kind(request, request.param, tmp_path / "i", C, (1.0, 2.0))
    store.upsert(*_items())
    yield store


def test_uncertain_ranks_by_the_margin_numpy_computes(index: VectorStore) -> None:
    ids, logits, _ = _items()
    p = np.sort(softmax(logits.astype(np.float64) / 2.0, axis=1), axis=1)
    margin = p[:, -1] - p[:, -2]
    result = run_analysis("uncertain", index, AnalysisOptions(temperature=2.0, limit=10), LABELS)
    assert [row["id"] for row in result.rows] == [ids[i] for i in np.argsort(margin, kind="stable")[:10]]
    np.testing.assert_allclose([row["margin"] for row in result.rows], np.sort(margin)[:10], rtol=1e-9)
    entropic = run_analysis("uncertain", index, AnalysisOptions(temperature=2.0, limit=5, by="entropy"), LABELS)
    h = -(softmax(logits.astype(np.float64) / 2.0, axis=1) * np.log(softmax(logits / 2.0, axis=1))).sum(axis=1)
    assert [row["id"] for row in entropic.rows] == [ids[i] for i in np.argsort(-h, kind="stable")[:5]]


def test_label_issues_are_cleanlabs_with_the_neighbours_brute_force_finds(index: VectorStore) -> None:
    from cleanlab.filter import find_label_issues

    ids, logits, metadata = _items()
    labels = np.array([m["label"] for m in metadata])
    p = softmax(logits.astype(np.float64), axis=1)
    expected = find_label_issues(labels, p, return_indices_ranked_by="self_confidence")
    result = run_analysis("label-issues", index, AnalysisOptions(limit=50, k=5), LABELS)
    assert [row["id"] for row in result.rows] == [ids[i] for i in expected[:50]]
    assert {ids[i] for i in range(0, 120, 15)} & {row["id"] for row in result.rows}  # flipped labels are found
    js = brute_force("js", logits, logits)
    for row in result.rows[:5]:
        i = ids.index(row["id"])
        order = [j for j in np.argsort(js[i], kind="stable") if j != i][:5]
        assert row["neighbour_agreement"] == pytest.approx(np.mean(labels[order] == labels[i]))
    by_name = run_analysis("label-issues", index, AnalysisOptions(limit=50, k=5, label_field="name"), LABELS)
    assert [row["id"] for row in by_name.rows] == [row["id"] for row in result.rows]  # label names read as classes


def test_near_duplicates_equal_an_exact_all_pairs_check(index: VectorStore) -> None:
    ids, logits, _ = _items()
    js = brute_force("js", logits, logits)
    threshold = 1e-5
    expected = {(ids[i], ids[j]) for i in range(len(ids)) for j in range(i + 1, len(ids)) if js[i, j] <= threshold}
    result = run_analysis("near-duplicates", index, AnalysisOptions(threshold=threshold, k=5), None)
    assert {(row["id"], row["other"]) for row in result.rows} == expected and len(expected) == 3
    assert sorted(map(sorted, result.summary["groups"])) == sorted([a, b] for a, b in expected)


def test_confusion_is_sklearns_matrix_with_the_cells_most_typical_items(index: VectorStore) -> None:
    ids, logits, metadata = _items()
    truth = np.array([m["label"] for m in metadata])
    predicted = logits.argmax(axis=1)
    result = run_analysis("confusion", index, AnalysisOptions(limit=100, filter={"half": 1}), LABELS)
    half = np.array([m["half"] == 1 for m in metadata])
    assert result.summary["matrix"] == confusion_matrix(truth[half], predicted[half], labels=range(C)).tolist()
    log_p = np.log(softmax(logits.astype(np.float64), axis=1))
    for cell in result.rows:
        members = np.flatnonzero(half & (truth == cell["label"]) & (predicted == cell["predicted"]))
        distance = np.linalg.norm(log_p[members] - log_p[members].mean(axis=0), axis=1)
        assert cell["typical"] == [ids[i] for i in members[np.argsort(distance, kind="stable")[:3]]]
    assert [cell["correct"] for cell in result.rows] == sorted(cell["correct"] for cell in result.rows)


def test_distance_matrix_by_ids_and_by_filter_is_scipys(index: VectorStore) -> None:
    ids, logits, metadata = _items()
    chosen = [ids[5], ids[0], ids[17]]
    result = run_analysis("distance-matrix", index, AnalysisOptions(ids=chosen, metric="kl", temperature=2.0), None)
    rows = [ids.index(i) for i in chosen]
    np.testing.assert_allclose(
        [row["distances"] for row in result.rows], brute_force("kl", logits[rows], logits[rows], 2.0), atol=1e-12
    )
    odd = run_analysis("distance-matrix", index, AnalysisOptions(filter={"half": 1}, metric="l2"), None)
    keep = [i for i, m in enumerate(metadata) if m["half"] == 1]
    np.testing.assert_allclose(
        [row["distances"] for row in odd.rows], brute_force("l2", logits[keep], logits[keep]), atol=1e-5
    )


def test_calibration_measures_overlap_with_ce_per_temperature(index: VectorStore) -> None:
    ids, logits, _ = _items()
    result = run_analysis("calibration", index, AnalysisOptions(queries=20, target=0.8), None)
    sample = [ids.index(i) for i in result.summary["queries"]]
    l2 = next(row for row in result.rows if row["metric"] == "l2")
    for j, t in enumerate(TEMPERATURES[:4]):
        ce, euclid = brute_force("ce", logits[sample], logits, t), brute_force("l2", logits[sample], logits)
        overlaps = []
        for q, i in enumerate(sample):
            top_ce = [k for k in np.argsort(ce[q], kind="stable") if k != i][:10]
            top_l2 = [k for k in np.argsort(euclid[q], kind="stable") if k != i][:10]
            overlaps.append(len(set(top_ce) & set(top_l2)) / 10)
        assert l2["overlap"][j] == pytest.approx(np.mean(overlaps))
    assert l2["reaches_at"] == reaches_at(np.array(l2["overlap"]), 0.8)


def test_reaches_at_interpolates_in_log_temperature_and_says_never() -> None:
    means = np.array([0.5, 0.7, 0.8, 0.95] + [0.95] * (len(TEMPERATURES) - 4))
    assert reaches_at(means, 0.9) == pytest.approx(np.exp(np.log(2.0) + (0.1 / 0.15) * np.log(2.0)))
    assert reaches_at(means, 0.5) == TEMPERATURES[0]
    assert reaches_at(means, 0.99) is None


def test_an_analysis_refuses_more_items_than_it_may_read_and_unknown_kinds(index: VectorStore) -> None:
    with pytest.raises(InvalidInputError, match="120 items match and this analysis reads at most 50"):
        run_analysis("uncertain", index, AnalysisOptions(max_items=50), None)
    with pytest.raises(InvalidInputError, match="no analysis 'mystery'"):
        run_analysis("mystery", index, AnalysisOptions(), None)
    with pytest.raises(InvalidInputError, match="no item holds a class in metadata field 'nope'"):
        run_analysis("confusion", index, AnalysisOptions(label_field="nope"), None)


def test_projection_is_the_pca_of_the_log_probabilities(index: VectorStore) -> None:
    from sklearn.decomposition import PCA

    ids, logits, _ = _items()
    result = run_analysis("projection", index, AnalysisOptions(temperature=2.0), LABELS)
    assert result.summary["ids"] == ids and result.summary["label"][:3] == [m["label"] for m in _items()[2][:3]]
    log_p = np.log(softmax(logits.astype(np.float64) / 2.0, axis=1))
    reference = PCA(n_components=2).fit(log_p)
    expected = reference.transform(log_p)
    got = np.column_stack([result.summary["x"], result.summary["y"]])
    for axis in range(2):  # each principal axis up to its sign
        assert abs(np.corrcoef(got[:, axis], expected[:, axis])[0, 1]) > 0.9999
    np.testing.assert_allclose(result.summary["explained_variance"], reference.explained_variance_ratio_, rtol=1e-6)
