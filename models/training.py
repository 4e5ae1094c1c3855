"""Training a classifier on the digits data, reproducibly, through the same image path as serving."""

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm  # no stubs in the dev extra

from .classifier import Classifier, load_classifier, save_classifier
from .digits import DIGITS_SPEC_DEFAULTS, load_digit_images
from .errors import TrainingConfigError
from .images import array_to_image, preprocess
from .registry import create_model, list_models
from .spec import ModelSpec, check_model_name

logger = logging.getLogger(__name__)

# Loss registry: name -> factory(config) -> criterion on (logits (n, C), targets (n,) int64).
LOSSES: dict[str, Callable[["TrainConfig"], nn.Module]] = {
    "ce": lambda config: nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
}
# Per-op work on 8x8 inputs is tiny: extra threads only add synchronisation, and on a busy 2-core machine
# 2 threads measured 10-15x slower than 1. One thread also makes the weights independent of the core count.
# Applied only when the caller has not chosen a thread count through OMP_NUM_THREADS.
_TRAIN_THREADS = 1


@dataclass(frozen=True)
class TrainConfig:
    """Training options; validated on construction.

    Attributes:
        name: Name to save the model under (file stem).
        arch: Registry key of the architecture.
        epochs: Passes over the train split (>= 1).
        batch_size: Images per optimiser step (>= 1).
        lr: AdamW learning rate (> 0).
        weight_decay: AdamW weight decay (>= 0).
        seed: Seeds weight init, dropout and shuffling.
        loss: Key of ``LOSSES``.
        label_smoothing: Cross-entropy label smoothing in [0, 1).
        arch_kwargs: Extra ``create_model`` options, saved in the spec.

    Raises:
        TrainingConfigError: On any invalid option.
    """

    name: str = "digits-cnn"
    arch: str = "digits-cnn"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    loss: str = "ce"
    label_smoothing: float = 0.0
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Raise ``TrainingConfigError`` naming the first invalid option."""
        try:
            check_model_name(self.name)
        except ValueError as e:
            raise TrainingConfigError(str(e)) from e
        if self.arch not in list_models():
            raise TrainingConfigError(f"unknown arch {self.arch!r}; known architectures: {', '.join(list_models())}")
        if self.loss not in LOSSES:
            raise TrainingConfigError(f"unknown loss {self.loss!r}; known losses: {', '.join(sorted(LOSSES))}")
        checks = {
            "epochs must be >= 1": self.epochs >= 1,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be finite and > 0": math.isfinite(self.lr) and self.lr > 0,
            "weight_decay must be finite and >= 0": math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "label_smoothing must be in [0, 1)": 0.0 <= self.label_smoothing < 1.0,
        }
        for message, ok in checks.items():
            if not ok:
                raise TrainingConfigError(f"{message}; got {self}")


@dataclass(frozen=True)
class LabeledImages:
    """A dataset prepared for training; a folder-of-images loader only has to produce one of these.

    Attributes:
        inputs: ``(n, channels, H, W)`` float32, output of ``preprocess``.
        labels: ``(n,)`` int64 class indices.
        is_train: ``(n,)`` bool, True for the train split, False for test.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    is_train: torch.Tensor


def train_classifier(
    config: TrainConfig, models_dir: Path, *, device: torch.device | None = None, progress: bool = True
) -> Classifier:
    """Train on the digits train split, evaluate on the test split, save and reload the model.

    Training is deterministic for a given seed on CPU (bit-identical weights and sha256). It runs on one
    thread unless ``OMP_NUM_THREADS`` is set, restoring the caller's setting afterwards. Inputs follow the serving path
    (uint8 pixels -> ``array_to_image`` -> ``preprocess``), so served logits match training-time inputs.

    Args:
        config: Training options.
        models_dir: Where ``NAME.safetensors`` and ``NAME.json`` are written.
        device: Device to train on; defaults to CPU so that the saved weights are reproducible everywhere.
        progress: Show a tqdm bar over epochs.

    Returns:
        The saved classifier, loaded back (eval mode) on ``device``.
    """
    device = device or torch.device("cpu")
    spec = ModelSpec(name=config.name, arch=config.arch, arch_kwargs=dict(config.arch_kwargs), **DIGITS_SPEC_DEFAULTS)
    data = _digits_dataset(spec)
    started = time.perf_counter()
    with _reproducible(config.seed):
        module = create_model(config.arch, spec.num_classes, spec.channels, **config.arch_kwargs).to(device)
        trajectory = _fit(module, data, config, device, progress)
        threads = torch.get_num_threads()
    training = _training_record(config, trajectory, time.perf_counter() - started, threads)
    logger.info(
        "trained %s: test accuracy %.4f in %.1f s on %s (%d thread(s))",
        config.name,
        training["test_accuracy"],
        training["train_seconds"],
        device,
        threads,
    )
    save_classifier(module, replace(spec, training=training), models_dir)
    return load_classifier(models_dir, config.name, device)


def _digits_dataset(spec: ModelSpec) -> LabeledImages:
    digits = load_digit_images()
    inputs = preprocess([array_to_image(pixels) for pixels in digits.images], spec)
    return LabeledImages(
        inputs=inputs, labels=torch.from_numpy(digits.labels.copy()), is_train=torch.from_numpy(digits.split == "train")
    )


def _fit(
    module: nn.Module, data: LabeledImages, config: TrainConfig, device: torch.device, progress: bool
) -> list[dict[str, Any]]:
    """Train ``module`` in place; return the per-epoch trajectory."""
    train_x, train_y = data.inputs[data.is_train].to(device), data.labels[data.is_train].to(device)
    test_x, test_y = data.inputs[~data.is_train].to(device), data.labels[~data.is_train].to(device)
    criterion = LOSSES[config.loss](config)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    shuffle = torch.Generator().manual_seed(config.seed)
    trajectory: list[dict[str, Any]] = []
    bar = tqdm(range(1, config.epochs + 1), desc=f"train {config.name}", unit="epoch", disable=not progress)
    for epoch in bar:
        module.train()
        total = 0.0
        for batch in torch.split(torch.randperm(len(train_y), generator=shuffle), config.batch_size):
            batch = batch.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(module(train_x[batch]), train_y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        train_loss, test_accuracy = total / len(train_y), _accuracy(module, test_x, test_y)
        trajectory.append({"epoch": epoch, "train_loss": train_loss, "test_accuracy": test_accuracy})
        bar.set_postfix(loss=f"{train_loss:.4f}", test_acc=f"{test_accuracy:.4f}")
        logger.debug(
            "epoch %d/%d: train loss %.4f, test accuracy %.4f", epoch, config.epochs, train_loss, test_accuracy
        )
    module.eval()
    return trajectory


def _accuracy(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    module.eval()
    with torch.inference_mode():
        predicted = module(x).argmax(dim=1)
    return float((predicted == y).float().mean().item())


def _training_record(
    config: TrainConfig, trajectory: list[dict[str, Any]], seconds: float, threads: int
) -> dict[str, Any]:
    return {
        "data": "digits",
        "loss": config.loss,
        "label_smoothing": config.label_smoothing,
        "seed": config.seed,
        "epochs": config.epochs,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "batch_size": config.batch_size,
        "optimizer": "adamw",
        "test_accuracy": trajectory[-1]["test_accuracy"],
        "train_seconds": round(seconds, 3),
        "torch_version": torch.__version__,
        "torch_threads": threads,
        "trajectory": trajectory,
    }


@contextlib.contextmanager
def _reproducible(seed: int) -> Iterator[None]:
    """Seed torch and enable deterministic algorithms, restoring the caller's RNG and settings afterwards."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    limit_threads = "OMP_NUM_THREADS" not in os.environ and threads != _TRAIN_THREADS
    with torch.random.fork_rng(devices=[]):
        try:
            torch.manual_seed(seed)
            # warn_only: a CUDA op without a deterministic kernel should not stop training.
            torch.use_deterministic_algorithms(True, warn_only=True)
            if limit_threads:
                torch.set_num_threads(_TRAIN_THREADS)
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
            if limit_threads:
                torch.set_num_threads(threads)
