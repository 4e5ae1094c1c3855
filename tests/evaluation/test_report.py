"""The report end to end on an in-memory store: contract keys, determinism, files, sampling and sections."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evaluation.dataset import load_items, split_queries
from evaluation.errors import EvaluationConfigError
from evaluation.options import EvaluationOptions
from evaluation.pairwise import PAIRWISE_MEASURES, correlate_measures, measure_pairs, sample_pairs
from evaluation.report import evaluate_store, write_report
from tests.evaluation.synthetic import MemoryStore, make_spec, make_store
from tests.helpers import RANKING_KEYS

OPTIONS = EvaluationOptions(num_queries=20, temperatures=(1.0, 8.0), k=5, num_pairs=500, separability_pairs=500)
TRAJECTORY = [
    {
        "epoch": 1,
        "train_loss": 1.2,
        "test_accuracy": 0.7,
        "p_inter_gt_intra": 0.8,
        "intra_mean": 3.0,
        "inter_mean": 5.0,
    },
    {
        "epoch": 2,
        "train_loss": 0.3,
        "test_accuracy": 0.9,
        "p_inter_gt_intra": 0.95,
        "intra_mean": 4.0,
        "inter_mean": 9.0,
    },
]


def test_report_holds_the_contract_keys(store: MemoryStore) -> None:
    report = evaluate_store(store, make_spec(trajectory=TRAJECTORY), OPTIONS)
    assert len(report["ranking"]) == 2 * 6 and all(RANKING_KEYS <= row.keys() for row in report["ranking"])
    assert len(report["pairwise"]) == 2 * 15
    assert {row["a"] for row in report["pairwise"]} | {row["b"] for row in report["pairwise"]} == set(PAIRWISE_MEASURES)
    assert report["separability"] == [
        {"epoch": 1, "loss": 1.2, "p_inter_gt_intra": 0.8, "test_accuracy": 0.7, "intra_mean": 3.0, "inter_mean": 5.0},
        {"epoch": 2, "loss": 0.3, "p_inter_gt_intra": 0.95, "test_accuracy": 0.9, "intra_mean": 4.0, "inter_mean": 9.0},
    ]
    config = report["config"]
    assert config["model"]["sha256"] == "0" * 64 and config["index"] == {"name": "memory", "count": 300, "dim": 5}
    assert config["seed"] == 0 and config["temperatures"] == [1.0, 8.0]
    assert "held-out items with metadata split == 'test'" in config["sampled"]["queries"]
    assert report["primary_metric"]["name"] == "ce_ranking_l2_t1_spearman_mean"


def test_report_is_deterministic_given_a_seed(store: MemoryStore) -> None:
    first = json.dumps(evaluate_store(store, make_spec(), OPTIONS))
    assert json.dumps(evaluate_store(store, make_spec(), OPTIONS)) == first
    other_seed = EvaluationOptions(**(OPTIONS.to_dict() | {"seed": 1}))
    assert json.dumps(evaluate_store(store, make_spec(), other_seed)) != first


def test_write_report_writes_json_markdown_and_plots(store: MemoryStore, tmp_path: Path) -> None:
    report = evaluate_store(store, make_spec(trajectory=TRAJECTORY), OPTIONS)
    paths = write_report(report, tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "report.json",
            "report.md",
            "correlation_vs_temperature.png",
            "overlap_vs_temperature.png",
            "separability_vs_loss.png",
            "distance_histograms.png",
        ]
    )
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == json.loads(json.dumps(report))
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| T | l2 | l2_centered | kl | js | tri | cosine |" in markdown and "![distance_histograms.png]" in markdown
    assert all((tmp_path / "out" / n).read_bytes()[:4] == b"\x89PNG" for n in names if n.endswith(".png"))


def test_report_without_trajectory_or_labels_says_so(rng: np.random.Generator, tmp_path: Path) -> None:
    store = make_store(rng, labeled=False)
    report = evaluate_store(store, make_spec(), OPTIONS)
    assert report["separability"] == [] and report["separability_index"] is None
    assert all(row["label_precision_at_k"] is None for row in report["ranking"])
    assert any("no per-epoch p_inter_gt_intra" in note for note in report["notes"])
    assert "random items (no 'test' split)" in report["config"]["sampled"]["queries"]
    assert [p.name for p in write_report(report, tmp_path)][2:] == [
        "correlation_vs_temperature.png",
        "overlap_vs_temperature.png",
    ]


def test_caller_logits_are_ranked_against_every_item(store: MemoryStore, rng: np.random.Generator) -> None:
    queries = store.logits[:3] + rng.normal(size=(3, 5)).astype(np.float32)
    report = evaluate_store(store, make_spec(), OPTIONS, query_logits=queries)
    assert report["ranking"][0]["num_queries"] == 3
    assert report["config"]["sampled"]["num_ranked_items"] == 300
    assert "3 caller-supplied query logits" in report["config"]["sampled"]["queries"]


def test_split_excludes_queries_and_samples_ranked_items(store: MemoryStore) -> None:
    items = load_items(store)
    split = split_queries(items, 30, None, 0)
    assert np.intersect1d(split.queries, split.ranked).size == 0
    assert split.queries.size + split.ranked.size == 300 and items.is_test[split.queries].all()
    sampled = split_queries(items, 30, 100, 0)
    assert sampled.ranked.size == 100 and np.intersect1d(sampled.queries, sampled.ranked).size == 0
    assert "a seeded sample of the" in sampled.source
    assert split_queries(items, 1000, None, 0).queries.size == items.is_test.sum()  # all held-out items at most


def test_store_too_small_is_refused(rng: np.random.Generator) -> None:
    with pytest.raises(EvaluationConfigError, match="at least 4"):
        evaluate_store(make_store(rng, num_items=3), make_spec(), OPTIONS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"temperatures": tuple(float(t) for t in range(1, 18))}, "1 to 16"),
        ({"temperatures": (1.0, -2.0)}, "finite number > 0"),
        ({"k": 1001}, "above the limit of 1000"),
        ({"num_queries": 0}, "num_queries"),
        ({"metrics": ("ce",)}, "unknown metric"),
    ],
)
def test_options_are_validated(change: dict[str, object], message: str) -> None:
    with pytest.raises(EvaluationConfigError, match=message):
        EvaluationOptions(**change)  # type: ignore[arg-type]


def test_pairwise_correlations_match_scipy(rng: np.random.Generator) -> None:
    store = make_store(rng, num_items=80)
    rows = correlate_measures(store.logits, (0.5, 2.0), 300, seed=3)
    first, second = sample_pairs(80, 300, seed=3)
    assert np.all(first != second)
    values = measure_pairs(store.logits[first], store.logits[second], 2.0)
    for row in rows[15:]:
        assert row["temperature"] == 2.0
        assert row["pearson"] == pytest.approx(stats.pearsonr(values[row["a"]], values[row["b"]]).statistic)
        assert row["spearman"] == pytest.approx(stats.spearmanr(values[row["a"]], values[row["b"]]).statistic)
    assert [(r["a"], r["b"]) for r in rows[:15]] == list(itertools.combinations(PAIRWISE_MEASURES, 2))


@pytest.mark.parametrize(("num_classes", "expected"), [(10, 10_000), (100, 10_000), (400, 2_500), (1000, 1_000)])
def test_pairwise_pairs_keep_the_work_of_c100_above_it(num_classes: int, expected: int) -> None:
    assert EvaluationOptions().pairwise_pairs(num_classes) == expected
    assert EvaluationOptions(num_pairs=77).pairwise_pairs(num_classes) == 77


@pytest.mark.parametrize(("num_classes", "expected"), [(10, None), (100, 200_000), (1000, 20_000)])
def test_ranked_items_are_sampled_only_at_large_c(num_classes: int, expected: int | None) -> None:
    assert EvaluationOptions().ranked_items(num_classes) == expected
    assert EvaluationOptions(num_items=50).ranked_items(num_classes) == 50
