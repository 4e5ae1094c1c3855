"""The training loop: forward, objective, backward and optimiser step, timed per phase and evaluated every epoch."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm  # no stubs in the dev extra

from .datasets import LabeledImages
from .losses import LossConfig, Objective, create_objective
from .separability import SEPARABILITY_KEYS, separability


class LoopConfig(Protocol):
    """What the loop reads of a training configuration (`training.TrainConfig` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def loss_config(self) -> LossConfig: ...

    @property
    def lr(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    @property
    def seed(self) -> int: ...

    @property
    def epochs(self) -> int: ...

    @property
    def batch_size(self) -> int: ...


logger = logging.getLogger(__name__)

TIMED_PHASES = ("forward_s", "loss_s", "backward_s", "optimizer_s")
_EVAL_BATCH = 1024


@dataclass(frozen=True)
class FitResult:
    """A trained module and how its training went.

    Attributes:
        module: The trained network, in eval mode.
        trajectory: One entry per epoch: ``{"epoch", "train_loss", "test_accuracy", "p_inter_gt_intra",
            "intra_mean", "inter_mean", "intra_std", "inter_std"}`` (separability of the test split's logits, see
            ``models.separability``; None when the test split has no same-class pair).
        timings: Seconds summed over all steps per phase, keys ``TIMED_PHASES``: forward pass, objective (loss or
            ISBE error), backward pass, and optimiser (zero_grad + step).
        step_seconds: The same per step (keys ``TIMED_PHASES``, one value per optimiser step, in order), for
            statistics that resist load spikes from other processes (medians).
        threads: torch intra-op threads used.
        seconds: Wall-clock time of the whole fit, evaluation included.
    """

    module: nn.Module
    trajectory: list[dict[str, Any]]
    timings: dict[str, float]
    threads: int
    step_seconds: dict[str, list[float]]
    seconds: float = 0.0


def run_epochs(
    module: nn.Module, data: LabeledImages, config: LoopConfig, device: torch.device, progress: bool
) -> FitResult:
    """Train ``module`` in place with AdamW on the train split; evaluate on the test split after every epoch.

    Args:
        module: Freshly initialised network on ``device``.
        data: Dataset with its split.
        config: Training options (objective, epochs, batch size, optimiser, seed for shuffling).
        device: Where training runs.
        progress: Show a tqdm bar over the batches of every epoch (when stderr is a terminal).

    Returns:
        The result (``seconds`` left at 0 for the caller to fill in).
    """
    train_x, train_y = data.inputs[data.is_train].to(device), data.labels[data.is_train].to(device)
    test_x, test_y = data.inputs[~data.is_train].to(device), data.labels[~data.is_train].to(device)
    objective = create_objective(config.loss_config, data.spec_fields["num_classes"], device)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    shuffle = torch.Generator().manual_seed(config.seed)
    clock = _clock(device)
    step_seconds: dict[str, list[float]] = {phase: [] for phase in TIMED_PHASES}
    trajectory: list[dict[str, Any]] = []
    num_batches = -(-len(train_y) // config.batch_size)
    # One bar over every batch of every epoch; disable=None: shown only on a terminal. leave=None: a bar nested
    # in another (compare-training's runs) goes away when done.
    bar = tqdm(
        total=config.epochs * num_batches,
        desc=f"train {config.name}",
        unit="batch",
        disable=None if progress else True,
        leave=None,
    )
    for epoch in range(1, config.epochs + 1):
        module.train()
        total = 0.0
        for batch in torch.split(torch.randperm(len(train_y), generator=shuffle), config.batch_size):
            batch = batch.to(device)
            total += _train_step(module, objective, optimizer, (train_x[batch], train_y[batch]), clock, step_seconds)
            bar.update(1)
        entry = {"epoch": epoch, "train_loss": total / len(train_y), **evaluate_logits(module, test_x, test_y)}
        trajectory.append(entry)
        bar.set_postfix(
            epoch=f"{epoch}/{config.epochs}",
            loss=f"{entry['train_loss']:.4f}",
            test_acc=f"{entry['test_accuracy']:.4f}",
        )
        logger.debug("epoch %d/%d: %s", epoch, config.epochs, entry)
    bar.close()
    module.eval()
    timings = {phase: sum(seconds) for phase, seconds in step_seconds.items()}
    return FitResult(module, trajectory, timings, torch.get_num_threads(), step_seconds)


def evaluate_logits(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Accuracy and logit separability of a labelled split.

    Args:
        module: Network (switched to eval mode).
        x: ``(n, channels, H, W)`` float32 inputs.
        y: ``(n,)`` int64 labels.

    Returns:
        ``{"test_accuracy", "p_inter_gt_intra", "intra_mean", "inter_mean", "intra_std", "inter_std"}``; the
        separability values are None when no class has two examples or there is a single class.
    """
    module.eval()
    with torch.inference_mode():
        logits = torch.cat([module(chunk) for chunk in torch.split(x, _EVAL_BATCH)])
    accuracy = float((logits.argmax(dim=1) == y).float().mean().item())
    try:
        separation: dict[str, float | None] = dict(separability(logits.float().cpu().numpy(), y.cpu().numpy()))
    except ValueError:
        separation = dict.fromkeys(SEPARABILITY_KEYS, None)
    return {"test_accuracy": accuracy, **separation}


def _train_step(
    module: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    batch: tuple[torch.Tensor, torch.Tensor],
    clock: Callable[[], float],
    step_seconds: dict[str, list[float]],
) -> float:
    """One optimiser step; appends each phase's seconds to ``step_seconds`` and returns the batch's summed loss."""
    start = clock()
    optimizer.zero_grad(set_to_none=True)
    zeroed = clock()
    logits = module(batch[0])
    forwarded = clock()
    step = objective(logits, batch[1])
    scored = clock()
    step.backward()
    backwarded = clock()
    optimizer.step()
    stepped = clock()
    step_seconds["forward_s"].append(forwarded - zeroed)
    step_seconds["loss_s"].append(scored - forwarded)
    step_seconds["backward_s"].append(backwarded - scored)
    step_seconds["optimizer_s"].append((zeroed - start) + (stepped - backwarded))
    return step.batch_total()  # outside the timed phases: monitoring only


def _clock(device: torch.device) -> Callable[[], float]:
    """A timer that waits for queued CUDA work first, so phases are charged their own kernels."""
    if device.type != "cuda":
        return time.perf_counter

    def synchronized() -> float:
        torch.cuda.synchronize(device)
        return time.perf_counter()

    return synchronized
