"""Training objectives: the cross-entropy family (CE, BCE, focal) and ISBE (Skarbek 2024).

Every objective maps a batch of logits ``(n, C)`` and labels ``(n,)`` to a ``LossStep`` that knows how to send the
gradient back: through a loss tensor (``loss.backward()``), or, for ISBE, straight into the logits
(``logits.backward(error)`` with ``error = soft score - target``, skipping the loss in both passes). The logits stay
the model's output in every case; the activation is only used to form the error.

Targets are one-hot vectors blurred by label smoothing ε: ``t = (1 - ε) onehot(y) + ε / C`` (what
``nn.CrossEntropyLoss(label_smoothing=ε)`` uses), mapped to ``2 t - 1`` for activations with range [-1, 1]
(tanh, hardtanh).

Reductions over the batch: ``mean`` (weighted mean when class weights are given, as in torch), ``sum``, and
``none``: the criterion returns one loss per example and the training step reduces them explicitly by summing (the
same gradient as ``loss.backward(torch.ones_like(loss))``). For ISBE, ``mean`` divides the error by the batch size
(or the sum of the examples' class weights), so that ISBE with softmax gives exactly the gradient of CE with mean
reduction; ``sum`` and ``none`` send the raw error, as in the paper, which is that gradient times the batch size.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (torch convention)
from torch import nn

from .errors import TrainingConfigError

LOSS_NAMES = ("ce", "bce", "focal", "isbe")
REDUCTIONS = ("mean", "sum", "none")
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax": lambda logits: torch.softmax(logits, dim=1),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardsigmoid": F.hardsigmoid,
    "hardtanh": F.hardtanh,
}
# The activation each loss implies; only ISBE lets the user choose.
NATURAL_ACTIVATION = {"ce": "softmax", "bce": "sigmoid", "focal": "softmax", "isbe": "softmax"}
_SYMMETRIC_ACTIVATIONS = ("tanh", "hardtanh")  # range [-1, 1]: targets become 2 t - 1


@dataclass(frozen=True)
class LossConfig:
    """Which objective to train with, and its parameters; validated on construction.

    Attributes:
        name: One of ``LOSS_NAMES``.
        activation: Soft score for ISBE (a key of ``ACTIVATIONS``); None means the loss's natural activation.
            The CE family accepts only its own (softmax for ce and focal, sigmoid for bce).
        reduction: One of ``REDUCTIONS`` (see the module docstring).
        label_smoothing: Blurring ε of the one-hot targets, in [0, 1).
        class_weights: Optional positive weight per class (length C, checked by ``check_num_classes``).
        gamma: Focal loss focusing parameter γ >= 0 (γ = 0 is cross-entropy); used only by ``focal``.

    Raises:
        TrainingConfigError: On any invalid option.
    """

    name: str = "ce"
    activation: str | None = None
    reduction: str = "mean"
    label_smoothing: float = 0.0
    class_weights: tuple[float, ...] | None = None
    gamma: float = 2.0

    def __post_init__(self) -> None:
        """Raise ``TrainingConfigError`` naming the first invalid option."""
        if self.name not in LOSS_NAMES:
            raise TrainingConfigError(f"unknown loss {self.name!r}; known losses: {', '.join(LOSS_NAMES)}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise TrainingConfigError(
                f"unknown activation {self.activation!r}; known activations: {', '.join(ACTIVATIONS)}"
            )
        natural = NATURAL_ACTIVATION[self.name]
        if self.name != "isbe" and self.activation not in (None, natural):
            raise TrainingConfigError(
                f"loss {self.name!r} uses {natural}; choose the activation only with --loss isbe, got {self.activation!r}"
            )
        if self.reduction not in REDUCTIONS:
            raise TrainingConfigError(f"unknown reduction {self.reduction!r}; use one of {', '.join(REDUCTIONS)}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise TrainingConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not (math.isfinite(self.gamma) and self.gamma >= 0):
            raise TrainingConfigError(f"gamma must be finite and >= 0, got {self.gamma}")
        weights = self.class_weights
        if weights is not None and not (weights and all(math.isfinite(w) and w > 0 for w in weights)):
            raise TrainingConfigError(f"class weights must be finite and > 0, one per class, got {list(weights)}")

    @property
    def soft_activation(self) -> str:
        """The activation actually used: the chosen one, or the loss's natural one."""
        return self.activation or NATURAL_ACTIVATION[self.name]

    def check_num_classes(self, num_classes: int) -> None:
        """Raise ``TrainingConfigError`` if the class weights do not give one weight per class."""
        if self.class_weights is not None and len(self.class_weights) != num_classes:
            raise TrainingConfigError(
                f"got {len(self.class_weights)} class weights for {num_classes} classes; give one weight per class"
            )

    def to_record(self) -> dict[str, object]:
        """Return the loss and its parameters as JSON-serialisable values (for the model spec)."""
        return {
            "loss": self.name,
            "activation": self.soft_activation,
            "reduction": self.reduction,
            "label_smoothing": self.label_smoothing,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "gamma": self.gamma if self.name == "focal" else None,
        }


@dataclass(slots=True)
class LossStep:
    """What one training step sends back into the network.

    Attributes:
        logits: ``(n, C)`` model output, part of the autograd graph.
        loss: Scalar loss with graph (CE family), or None for ISBE.
        error: ``(n, C)`` gradient with respect to ``logits`` (ISBE), or None.
        scale: Multiplies ``loss`` to give the batch's summed loss (``n`` for mean reduction, else 1); for ISBE,
            the factor that undoes the mean reduction of ``error`` (the batch size or its sum of class weights).
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    error: torch.Tensor | None = None
    scale: float = 1.0

    def backward(self) -> None:
        """Accumulate parameter gradients: ``loss.backward()``, or ``logits.backward(error)`` for ISBE."""
        if self.error is not None:
            torch.autograd.backward(self.logits, grad_tensors=self.error)
        elif self.loss is not None:
            torch.autograd.backward(self.loss)

    def batch_total(self) -> float:
        """Summed loss over the batch; for ISBE, ``sum of 0.5 * ||soft score - target||^2`` (no loss is formed).

        With class weights, ISBE's residual of each example is scaled by its class weight.
        """
        if self.error is not None:
            return 0.5 * float(self.error.square().sum()) * self.scale**2
        return float(self.loss.detach()) * self.scale if self.loss is not None else 0.0


Objective = Callable[[torch.Tensor, torch.Tensor], LossStep]


def create_objective(config: LossConfig, num_classes: int, device: torch.device) -> Objective:
    """Build the training objective.

    Args:
        config: Loss options.
        num_classes: Number of logits C.
        device: Where the logits live (class weights and target tables are put there).

    Returns:
        A callable ``(logits (n, C) float, labels (n,) int64) -> LossStep``.

    Raises:
        TrainingConfigError: If the class weights do not match ``num_classes``.
    """
    config.check_num_classes(num_classes)
    weight = None if config.class_weights is None else torch.tensor(config.class_weights, device=device)
    targets = blurred_targets(num_classes, config.label_smoothing, config.soft_activation, device)
    if config.name == "ce":
        criterion = nn.CrossEntropyLoss(
            weight=weight, label_smoothing=config.label_smoothing, reduction=config.reduction
        )
        return lambda logits, labels: _criterion_step(criterion(logits, labels), logits, config.reduction)
    if config.name == "bce":
        binary = nn.BCEWithLogitsLoss(weight=weight, reduction=config.reduction)
        return lambda logits, labels: _criterion_step(
            binary(logits, targets.index_select(0, labels)), logits, config.reduction
        )
    if config.name == "focal":
        return lambda logits, labels: _criterion_step(
            focal_loss(logits, labels, config.gamma, weight, config.label_smoothing, config.reduction),
            logits,
            config.reduction,
        )
    activation = ACTIVATIONS[config.soft_activation]
    return lambda logits, labels: isbe_step(logits, labels, activation, targets, weight, config.reduction)


def blurred_targets(num_classes: int, smoothing: float, activation: str, device: torch.device) -> torch.Tensor:
    """Return the ``(C, C)`` target table: row y is the blurred one-hot target of class y in the activation's range."""
    table = torch.full((num_classes, num_classes), smoothing / num_classes, device=device)
    table += torch.eye(num_classes, device=device) * (1.0 - smoothing)
    return 2.0 * table - 1.0 if activation in _SYMMETRIC_ACTIVATIONS else table


def focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    gamma: float,
    weight: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): cross-entropy of each example scaled by ``(1 - p_y) ** gamma``.

    With ``gamma = 0`` it equals ``F.cross_entropy`` with the same weight, label smoothing and reduction
    (the weighted mean divides by the sum of the examples' class weights, as torch does).

    Args:
        logits: ``(n, C)`` float.
        labels: ``(n,)`` int64.
        gamma: Focusing parameter >= 0.
        weight: Optional ``(C,)`` class weights.
        label_smoothing: ε in [0, 1).
        reduction: ``mean``, ``sum`` or ``none``.

    Returns:
        Scalar, or ``(n,)`` per-example losses for ``none``.
    """
    ce = F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing, reduction="none")
    p_true = torch.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
    losses = (1.0 - p_true).pow(gamma) * ce if gamma else ce
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (weight[labels].sum() if weight is not None else len(labels))


def isbe_step(
    logits: torch.Tensor,
    labels: torch.Tensor,
    activation: Callable[[torch.Tensor], torch.Tensor],
    targets: torch.Tensor,
    weight: torch.Tensor | None,
    reduction: str,
) -> LossStep:
    """Form the ISBE error ``activation(logits) - target`` without building a graph for it.

    Args:
        logits: ``(n, C)`` model output (with graph).
        labels: ``(n,)`` int64.
        activation: Soft score function, e.g. ``ACTIVATIONS["softmax"]``.
        targets: ``(C, C)`` table from ``blurred_targets``.
        weight: Optional ``(C,)`` class weights; each example's error is scaled by its class weight.
        reduction: ``mean`` divides by the batch size (or the sum of the examples' weights); otherwise raw.

    Returns:
        The step; ``backward()`` calls ``logits.backward(error)``.
    """
    # The soft score of the detached logits is a fresh tensor outside any graph, so it is updated in place.
    error = activation(logits.detach()).sub_(targets.index_select(0, labels))
    scale = 1.0
    if weight is not None:
        example_weights = weight[labels]
        error.mul_(example_weights[:, None])
        scale = float(example_weights.sum())
    elif reduction == "mean":
        scale = float(len(labels))
    if reduction == "mean":
        error.div_(scale)
    return LossStep(logits, error=error, scale=scale if reduction == "mean" else 1.0)


def _criterion_step(loss: torch.Tensor, logits: torch.Tensor, reduction: str) -> LossStep:
    if reduction == "none":
        loss = loss.sum()  # the explicit reduction of per-example (or per-element) losses
    return LossStep(logits=logits, loss=loss, scale=float(len(logits)) if reduction == "mean" else 1.0)
