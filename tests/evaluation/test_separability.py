"""Separability: the trajectory section, the class-pair sampler and the index estimate."""

import numpy as np

from evaluation.separability import measure_separability, sample_class_pairs, trajectory_rows
from models.separability import separability


def test_trajectory_rows_keep_only_epochs_with_separability() -> None:
    training = {
        "trajectory": [
            {"epoch": 1, "train_loss": 2.0, "test_accuracy": 0.5},
            {"epoch": 2, "train_loss": 1.0, "test_accuracy": 0.8, "p_inter_gt_intra": 0.9},
        ]
    }
    assert trajectory_rows(training) == [{"epoch": 2, "loss": 1.0, "p_inter_gt_intra": 0.9, "test_accuracy": 0.8}]
    assert trajectory_rows({}) == [] and trajectory_rows({"trajectory": "bad"}) == []


def test_class_pairs_are_same_class_and_different_class(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 4, size=200)
    intra_i, intra_j, inter_i, inter_j = sample_class_pairs(labels, 5000, seed=0)
    assert np.all(intra_i != intra_j) and np.all(labels[intra_i] == labels[intra_j])
    assert np.all(labels[inter_i] != labels[inter_j])
    # Uniform over same-class pairs: class c is drawn with weight n_c (n_c - 1).
    counts = np.bincount(labels)
    expected = counts * (counts - 1) / np.sum(counts * (counts - 1))
    np.testing.assert_allclose(np.bincount(labels[intra_i], minlength=4) / 5000, expected, atol=0.03)


def test_index_separability_matches_the_training_estimate(rng: np.random.Generator) -> None:
    labels = np.repeat(np.arange(3), 20)
    logits = 5.0 * np.eye(3)[labels] + rng.normal(size=(60, 3))
    result = measure_separability(logits, np.where(np.arange(60) == 0, -1, labels), 100_000, bins=10, seed=0)
    assert result is not None
    expected = separability(logits[1:], labels[1:], num_pairs=100_000, seed=0)  # exact: all pairs
    assert {k: result[k] for k in expected} == expected
    histogram = result["histogram"]
    assert len(histogram["edges"]) == 11 and sum(histogram["intra"]) == sum(histogram["inter"]) == 100_000
    assert result["num_items"] == 59


def test_index_separability_needs_two_labeled_classes() -> None:
    logits = np.zeros((5, 3))
    assert measure_separability(logits, np.array([0, 0, 0, -1, -1]), 10, bins=5, seed=0) is None
    assert measure_separability(logits, np.array([0, 1, 2, 3, 4]), 10, bins=5, seed=0) is None
