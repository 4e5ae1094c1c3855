"""Tests for models/separability.py against a brute-force computation over all pairs."""

import itertools

import numpy as np
import pytest

from models.separability import SEPARABILITY_KEYS, separability


def _brute_force(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    logits = logits.astype(np.float64)
    intra, inter = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (intra if labels[i] == labels[j] else inter).append(float(np.linalg.norm(logits[i] - logits[j])))
    greater = np.asarray(inter)[:, None] > np.asarray(intra)[None, :]  # every (inter, intra) combination
    return {
        "p_inter_gt_intra": float(greater.mean()),
        "intra_mean": float(np.mean(intra)),
        "inter_mean": float(np.mean(inter)),
        "intra_std": float(np.std(intra)),
        "inter_std": float(np.std(inter)),
    }


def _clustered(rng: np.random.Generator, n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, num_classes, size=n)
    centres = rng.normal(scale=2.0, size=(num_classes, 5))
    return (centres[labels] + rng.normal(size=(n, 5))).astype(np.float32), labels


def test_separability_exact_matches_brute_force(rng: np.random.Generator) -> None:
    logits, labels = _clustered(rng, 40, 3)
    result = separability(logits, labels, num_pairs=1000)
    assert tuple(result) == SEPARABILITY_KEYS
    expected = _brute_force(logits, labels)
    for key in SEPARABILITY_KEYS:
        assert result[key] == pytest.approx(expected[key], rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_separability_sampled_close_to_brute_force(rng: np.random.Generator, seed: int) -> None:
    logits, labels = _clustered(rng, 150, 4)
    labels[:5] = 4  # a small class: sampling must stay uniform over pairs, not over classes
    expected = _brute_force(logits, labels)
    result = separability(logits, labels, num_pairs=8000, seed=seed)
    assert result["p_inter_gt_intra"] == pytest.approx(expected["p_inter_gt_intra"], abs=0.02)
    for key in SEPARABILITY_KEYS[1:]:
        assert result[key] == pytest.approx(expected[key], rel=0.03)
    assert separability(logits, labels, num_pairs=8000, seed=seed) == result  # seeded


def test_separability_separated_classes_give_one() -> None:
    logits = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.0, 0.1]])
    result = separability(logits, np.array([7, 7, 3, 3]))
    assert result["p_inter_gt_intra"] == 1.0
    assert result["intra_mean"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("logits", "labels", "message"),
    [
        (np.zeros((3, 2)), np.array([0, 1, 2]), "class sizes"),
        (np.zeros((3, 2)), np.array([0, 0, 0]), "class sizes"),
        (np.zeros((3, 2)), np.array([0, 1]), "expected logits"),
    ],
)
def test_separability_invalid(logits: np.ndarray, labels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        separability(logits, labels)
