"""Tests for models/comparison.py: the L2-versus-CE Spearman oracle, configuration and a tiny real run."""

from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from models import TrainingConfigError
from models.comparison import VARIANTS, ComparisonConfig, correlate_l2_with_ce, run_comparison


def _brute_force(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    log_q = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    result = []
    for i in range(len(x)):
        others = [j for j in range(len(x)) if j != i]
        l2 = [np.linalg.norm(x[i] - x[j]) for j in others]
        ce = [-(np.exp(log_q[i]) * log_q[j]).sum() for j in others]
        result.append(spearmanr(l2, ce).statistic)
    return np.array(result)


def test_correlate_l2_with_ce_matches_brute_force(rng: np.random.Generator) -> None:
    logits = (rng.normal(size=(25, 4)) * 3).astype(np.float32)
    np.testing.assert_allclose(correlate_l2_with_ce(logits), _brute_force(logits), atol=1e-9)


def test_correlate_l2_with_ce_constant_query_is_nan() -> None:
    logits = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert np.isnan(correlate_l2_with_ce(logits)[0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variants": ("ce-max",)}, "unknown variants"),
        ({"variants": ()}, "unknown variants"),
        ({"seeds": ()}, "at least one seed"),
        ({"archs": ("resnet",)}, "known architectures"),
        ({"epochs": 0}, "epochs"),
    ],
)
def test_comparison_config_invalid(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingConfigError, match=message):
        ComparisonConfig(**options)


def test_comparison_variants_are_valid_configs() -> None:
    config = ComparisonConfig()
    for variant in VARIANTS:
        assert config.train_config("mlp", variant, 0).loss == VARIANTS[variant]["loss"]


def test_run_comparison_isbe_softmax_tracks_ce_mean() -> None:
    rows = run_comparison(ComparisonConfig(seeds=(0,), epochs=2, archs=("mlp",), variants=("ce-mean", "isbe-softmax")))
    ce, isbe = rows
    assert ce["variant"] == "ce-mean" and isbe["activation"] == "softmax" and ce["arch"] == "mlp"
    # Same gradients up to float rounding, so the same model up to rounding.
    assert isbe["test_accuracy"] == pytest.approx(ce["test_accuracy"], abs=0.01)
    assert -1.0 <= ce["l2_ce_spearman"] <= 1.0 and len(ce["trajectory"]) == 2
    assert ce["step_ms_median"] > 0 and ce["forward_s"] > 0
