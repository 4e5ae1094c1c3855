"""Training a classifier reproducibly, with a choice of objective, through the same image path as serving."""

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .classifier import Classifier, load_classifier, save_classifier
from .datasets import LabeledImages, load_dataset
from .errors import TrainingConfigError
from .loop import FitResult, run_epochs
from .losses import LossConfig
from .registry import create_model, list_models
from .spec import ModelSpec, check_model_name

__all__ = [
    "ARCH_ALIASES",
    "DEFAULT_TRAIN_THREADS",
    "FitResult",
    "LabeledImages",
    "TrainConfig",
    "fit_classifier",
    "train_classifier",
]

logger = logging.getLogger(__name__)

# Short architecture names of the CLI contract (DESIGN.md) -> registry keys.
ARCH_ALIASES = {"cnn": "digits-cnn"}
# Per-op work on 8x8 inputs is tiny: extra threads only add synchronisation, and on a busy 2-core machine
# 2 threads measured 10-15x slower than 1 (up to 50x while other processes use the cores, also with
# OMP_NUM_THREADS=2 as CI sets it). One thread also makes the weights independent of the core count.
# TrainConfig.num_threads overrides it.
DEFAULT_TRAIN_THREADS = 1


@dataclass(frozen=True)
class TrainConfig:
    """Training options; validated on construction (before any data is read or training starts).

    Attributes:
        name: Name to save the model under (file stem).
        arch: Registry key of the architecture, or an alias from ``ARCH_ALIASES`` (``cnn`` = ``digits-cnn``);
            stored as the registry key.
        data: ``"digits"`` or the path (str or ``Path``, stored as str) of a folder with one sub-folder of images
            per class.
        epochs: Passes over the train split (>= 1).
        batch_size: Images per optimiser step (>= 1).
        lr: AdamW learning rate (> 0).
        weight_decay: AdamW weight decay (>= 0).
        seed: Seeds weight init, dropout and shuffling.
        loss: ``ce``, ``bce``, ``focal`` or ``isbe`` (see ``models.losses``).
        activation: ISBE soft score (softmax, sigmoid, tanh, hardsigmoid, hardtanh); None = the loss's own.
        reduction: ``mean``, ``sum`` or ``none`` (per-example losses reduced explicitly in the step).
        label_smoothing: Target blurring in [0, 1).
        class_weights: Optional positive weight per class (length checked against the data's classes).
        gamma: Focal loss γ >= 0.
        arch_kwargs: Extra ``create_model`` options, saved in the spec.
        num_threads: torch threads while training; None = ``DEFAULT_TRAIN_THREADS`` (1), whatever
            ``OMP_NUM_THREADS`` says. The caller's setting is restored afterwards.

    Raises:
        TrainingConfigError: On any invalid option.
    """

    name: str = "digits-cnn"
    arch: str = "digits-cnn"
    data: str = "digits"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    loss: str = "ce"
    activation: str | None = None
    reduction: str = "mean"
    label_smoothing: float = 0.0
    class_weights: tuple[float, ...] | None = None
    gamma: float = 2.0
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    num_threads: int | None = None

    def __post_init__(self) -> None:
        """Raise ``TrainingConfigError`` naming the first invalid option."""
        object.__setattr__(self, "arch", ARCH_ALIASES.get(self.arch, self.arch))
        object.__setattr__(self, "data", str(self.data))  # a Path is welcome too
        try:
            check_model_name(self.name)
            if self.class_weights is not None:
                object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        except (TypeError, ValueError) as e:
            raise TrainingConfigError(str(e)) from e
        if self.arch not in list_models():
            known = ", ".join([*list_models(), *(f"{alias} (= {key})" for alias, key in ARCH_ALIASES.items())])
            raise TrainingConfigError(f"unknown arch {self.arch!r}; known architectures: {known}")
        self.loss_config  # noqa: B018 (validates the loss options)
        checks = {
            "epochs must be >= 1": self.epochs >= 1,
            "batch_size must be >= 1": self.batch_size >= 1,
            "lr must be finite and > 0": math.isfinite(self.lr) and self.lr > 0,
            "weight_decay must be finite and >= 0": math.isfinite(self.weight_decay) and self.weight_decay >= 0,
            "data must be 'digits' or a folder path": bool(self.data),
            "num_threads must be >= 1": self.num_threads is None or self.num_threads >= 1,
        }
        for message, ok in checks.items():
            if not ok:
                raise TrainingConfigError(f"{message}; got {self}")

    @property
    def loss_config(self) -> LossConfig:
        """The objective's options (validated)."""
        return LossConfig(
            name=self.loss,
            activation=self.activation,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            class_weights=self.class_weights,
            gamma=self.gamma,
        )


def train_classifier(
    config: TrainConfig,
    models_dir: Path,
    *,
    device: torch.device | None = None,
    progress: bool = True,
    data: LabeledImages | None = None,
) -> Classifier:
    """Load the data, train, evaluate on the test split each epoch, then save and reload the model.

    Training is deterministic for a given seed and thread count on CPU (bit-identical weights and sha256). It
    runs on ``config.num_threads`` threads (default 1), restoring the caller's setting afterwards. Inputs follow
    the serving path (decoded image -> ``preprocess``), so served logits match training-time inputs. Every option,
    including the class weights' length and every file of an image folder, is checked before training starts.

    Args:
        config: Training options.
        models_dir: Where ``NAME.safetensors`` and ``NAME.json`` are written.
        device: Device to train on; defaults to CPU so that the saved weights are reproducible everywhere.
        progress: Show a tqdm bar over epochs.
        data: Dataset already loaded (e.g. with other image limits, see ``load_dataset``); default: load
            ``config.data``.

    Returns:
        The saved classifier, loaded back (eval mode) on ``device``. Its ``spec.training`` records the loss and its
        parameters, the seed, the test accuracy, the phase timings and the per-epoch trajectory.

    Raises:
        TrainingConfigError: For invalid options or an unusable dataset.
    """
    device = device or torch.device("cpu")
    data = data or load_dataset(config.data)
    config.loss_config.check_num_classes(data.spec_fields["num_classes"])
    result = fit_classifier(config, data, device=device, progress=progress)
    training = _training_record(config, data, result)
    logger.info(
        "trained %s: test accuracy %.4f in %.1f s on %s (%d thread(s))",
        config.name,
        training["test_accuracy"],
        training["train_seconds"],
        device,
        result.threads,
    )
    spec = ModelSpec(
        name=config.name,
        arch=config.arch,
        arch_kwargs=_arch_kwargs(config, data),
        training=training,
        **data.spec_fields,
    )
    save_classifier(result.module, spec, models_dir)
    return load_classifier(models_dir, config.name, device)


def fit_classifier(
    config: TrainConfig, data: LabeledImages, *, device: torch.device | None = None, progress: bool = False
) -> FitResult:
    """Build the architecture from the seed and train it on ``data`` without saving (the comparison uses this).

    Args:
        config: Training options (``config.data`` is not read; ``data`` is used).
        data: Prepared dataset.
        device: Device to train on (default CPU).
        progress: Show a tqdm bar over epochs.

    Returns:
        The trained module (eval mode), its per-epoch trajectory and its phase timings.

    Raises:
        TrainingConfigError: If the class weights do not match the data's classes.
    """
    device = device or torch.device("cpu")
    config.loss_config.check_num_classes(data.spec_fields["num_classes"])
    started = time.perf_counter()
    with _reproducible(config.seed, config.num_threads or DEFAULT_TRAIN_THREADS):
        fields = data.spec_fields
        module = create_model(config.arch, fields["num_classes"], fields["channels"], **_arch_kwargs(config, data))
        result = run_epochs(module.to(device), data, config, device, progress)
    return replace(result, seconds=time.perf_counter() - started)


def _arch_kwargs(config: TrainConfig, data: LabeledImages) -> dict[str, Any]:
    """The config's architecture options; the MLP also gets a folder dataset's input size (its first layer)."""
    kwargs = dict(config.arch_kwargs)
    if config.arch == "mlp" and data.source != "digits" and "input_size" not in kwargs:
        kwargs["input_size"] = list(data.spec_fields["input_size"])
    return kwargs


def _training_record(config: TrainConfig, data: LabeledImages, result: FitResult) -> dict[str, Any]:
    return {
        "data": data.source,
        **config.loss_config.to_record(),
        "seed": config.seed,
        "epochs": config.epochs,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "batch_size": config.batch_size,
        "optimizer": "adamw",
        "test_accuracy": result.trajectory[-1]["test_accuracy"],
        "train_seconds": round(result.seconds, 3),
        "timings": {key: round(value, 4) for key, value in result.timings.items()},
        "torch_version": torch.__version__,
        "torch_threads": result.threads,
        "trajectory": result.trajectory,
    }


@contextlib.contextmanager
def _reproducible(seed: int, num_threads: int) -> Iterator[None]:
    """Seed torch, enable deterministic algorithms and set the thread count, restoring the caller's afterwards."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    limit_threads = threads != num_threads
    with torch.random.fork_rng(devices=[]):
        try:
            torch.manual_seed(seed)
            # warn_only: a CUDA op without a deterministic kernel should not stop training.
            torch.use_deterministic_algorithms(True, warn_only=True)
            if limit_threads:
                torch.set_num_threads(num_threads)
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
            if limit_threads:
                torch.set_num_threads(threads)
