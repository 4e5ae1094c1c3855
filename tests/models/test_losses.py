"""Tests for models/losses.py: torch.nn references, ISBE versus cross-entropy gradients, option validation."""

from typing import Any

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from models import LossConfig, TrainingConfigError, create_model, create_objective
from models.losses import ACTIVATIONS, blurred_targets, focal_loss

CPU = torch.device("cpu")
NUM_CLASSES = 5
WEIGHTS = (0.5, 1.0, 2.0, 1.5, 0.8)


def _batch(seed: int, n: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, NUM_CLASSES, generator=generator) * 3, torch.randint(
        0, NUM_CLASSES, (n,), generator=generator
    )


def _parameter_grads(config: LossConfig, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Gradients of a small seeded MLP's parameters for one batch under ``config``, and the batch's labels."""
    torch.manual_seed(seed)
    module = create_model("mlp", NUM_CLASSES, 1, input_size=(4, 4), hidden=(16,))
    generator = torch.Generator().manual_seed(seed + 100)
    x, y = torch.randn(24, 1, 4, 4, generator=generator), torch.randint(0, NUM_CLASSES, (24,), generator=generator)
    create_objective(config, NUM_CLASSES, CPU)(module(x), y).backward()
    return [p.grad.clone() for p in module.parameters() if p.grad is not None], y


@pytest.mark.parametrize(
    "options", [{}, {"label_smoothing": 0.1}, {"class_weights": WEIGHTS}], ids=["plain", "smoothing", "weights"]
)
def test_isbe_softmax_matches_ce_mean_gradients(options: dict[str, Any]) -> None:
    ce, labels = _parameter_grads(LossConfig(name="ce", **options))
    isbe_mean, _ = _parameter_grads(LossConfig(name="isbe", reduction="mean", **options))
    isbe_raw, _ = _parameter_grads(LossConfig(name="isbe", reduction="sum", **options))
    # The paper's raw error (soft score - target) is the gradient of the summed CE: the mean's times the batch size,
    # or, with class weights, times the sum of the batch's weights (torch's weighted-mean denominator).
    factor = float(torch.tensor(WEIGHTS)[labels].sum()) if "class_weights" in options else float(len(labels))
    for g_ce, g_mean, g_raw in zip(ce, isbe_mean, isbe_raw, strict=True):
        torch.testing.assert_close(g_mean, g_ce, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(g_raw, g_ce * factor, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_ce_matches_torch_cross_entropy(reduction: str, smoothing: float, weights: tuple[float, ...] | None) -> None:
    logits, labels = _batch(1)
    config = LossConfig(name="ce", reduction=reduction, label_smoothing=smoothing, class_weights=weights)
    weight = None if weights is None else torch.tensor(weights)
    reference = nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing, reduction=reduction)(logits, labels)
    step = create_objective(config, NUM_CLASSES, CPU)(logits, labels)
    assert step.loss is not None
    torch.testing.assert_close(step.loss, reference.sum() if reduction == "none" else reference)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_bce_matches_torch_bce_with_logits(reduction: str, weights: tuple[float, ...] | None) -> None:
    logits, labels = _batch(2)
    weight = None if weights is None else torch.tensor(weights)
    one_hot = F.one_hot(labels, NUM_CLASSES).float()
    reference = nn.BCEWithLogitsLoss(weight=weight, reduction=reduction)(logits, one_hot)
    step = create_objective(LossConfig(name="bce", reduction=reduction, class_weights=weights), NUM_CLASSES, CPU)(
        logits, labels
    )
    assert step.loss is not None
    torch.testing.assert_close(step.loss, reference.sum() if reduction == "none" else reference)


def test_bce_label_smoothing_blurs_targets() -> None:
    logits, labels = _batch(3)
    targets = F.one_hot(labels, NUM_CLASSES).float() * 0.9 + 0.1 / NUM_CLASSES
    reference = F.binary_cross_entropy_with_logits(logits, targets)
    step = create_objective(LossConfig(name="bce", label_smoothing=0.1), NUM_CLASSES, CPU)(logits, labels)
    assert step.loss is not None
    torch.testing.assert_close(step.loss, reference)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weights", [None, WEIGHTS])
def test_focal_gamma_zero_equals_cross_entropy(reduction: str, weights: tuple[float, ...] | None) -> None:
    logits, labels = _batch(4)
    weight = None if weights is None else torch.tensor(weights)
    reference = F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.1, reduction=reduction)
    focal = focal_loss(logits, labels, 0.0, weight, label_smoothing=0.1, reduction=reduction)
    torch.testing.assert_close(focal, reference)


def test_focal_matches_formula() -> None:
    logits, labels = _batch(5)
    p = torch.softmax(logits, dim=1)[torch.arange(len(labels)), labels]
    expected = (-((1 - p) ** 2) * torch.log(p)).mean()
    step = create_objective(LossConfig(name="focal", gamma=2.0), NUM_CLASSES, CPU)(logits, labels)
    assert step.loss is not None
    torch.testing.assert_close(step.loss, expected)
    assert focal_loss(logits, labels, 2.0) < F.cross_entropy(logits, labels)  # easy examples are down-weighted


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_isbe_sends_soft_score_minus_target_into_logits(activation: str) -> None:
    logits, labels = _batch(6)
    logits.requires_grad_(True)
    one_hot = F.one_hot(labels, NUM_CLASSES).float()
    target = 2 * one_hot - 1 if activation in ("tanh", "hardtanh") else one_hot
    step = create_objective(LossConfig(name="isbe", activation=activation, reduction="none"), NUM_CLASSES, CPU)(
        logits, labels
    )
    assert step.loss is None
    step.backward()
    expected = ACTIVATIONS[activation](logits.detach()) - target
    torch.testing.assert_close(logits.grad, expected)
    assert step.batch_total() == pytest.approx(0.5 * float(expected.square().sum()))


def test_blurred_targets_ranges() -> None:
    table = blurred_targets(4, 0.2, "softmax", CPU)
    torch.testing.assert_close(table.sum(dim=1), torch.ones(4))
    assert table[0, 0] == pytest.approx(0.85) and table[0, 1] == pytest.approx(0.05)
    symmetric = blurred_targets(4, 0.2, "hardtanh", CPU)
    assert symmetric[0, 0] == pytest.approx(0.7) and symmetric[0, 1] == pytest.approx(-0.9)


def test_loss_step_batch_total_mean_is_summed_loss() -> None:
    logits, labels = _batch(7)
    step = create_objective(LossConfig(name="ce"), NUM_CLASSES, CPU)(logits, labels)
    assert step.batch_total() == pytest.approx(float(F.cross_entropy(logits, labels, reduction="sum")), rel=1e-5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "hinge"}, "known losses"),
        ({"name": "isbe", "activation": "relu"}, "known activations"),
        ({"name": "ce", "activation": "tanh"}, "only with --loss isbe"),
        ({"reduction": "max"}, "reduction"),
        ({"gamma": -0.5}, "gamma"),
        ({"gamma": float("inf")}, "gamma"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"class_weights": (1.0, 0.0)}, "class weights"),
        ({"class_weights": (1.0, float("nan"))}, "class weights"),
        ({"class_weights": ()}, "class weights"),
    ],
)
def test_loss_config_invalid(options: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingConfigError, match=message):
        LossConfig(**options)


def test_loss_config_checks_weight_count() -> None:
    config = LossConfig(class_weights=(1.0, 2.0))
    config.check_num_classes(2)
    with pytest.raises(TrainingConfigError, match="2 class weights for 10 classes"):
        create_objective(config, 10, CPU)


def test_loss_config_record() -> None:
    assert LossConfig(name="bce").to_record()["activation"] == "sigmoid"
    record = LossConfig(name="focal", gamma=1.5, class_weights=(1.0, 2.0)).to_record()
    assert record == {
        "loss": "focal",
        "activation": "softmax",
        "reduction": "mean",
        "label_smoothing": 0.0,
        "class_weights": [1.0, 2.0],
        "gamma": 1.5,
    }
