"""Comparing training objectives: every variant on the same data, seeds and architectures, timed per phase.

Each run records the test accuracy, the seconds spent in the forward pass, the objective (loss or ISBE error) and
the backward pass, and how well L2 distances between logits follow the cross-entropy ranking that the service's
search promises (per-query Spearman correlation over the test split).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import cdist
from scipy.stats import spearmanr
from tqdm import tqdm

from .datasets import LabeledImages, load_dataset
from .errors import TrainingConfigError
from .training import ARCH_ALIASES, TrainConfig, fit_classifier

logger = logging.getLogger(__name__)

# Name -> TrainConfig options. ISBE uses the default mean reduction, so ``isbe-softmax`` has exactly the
# gradients of ``ce-mean``; ``isbe-softmax-raw`` sends the paper's unscaled error (the gradient of ``ce-sum``).
VARIANTS: dict[str, dict[str, Any]] = {
    "ce-mean": {"loss": "ce"},
    "ce-sum": {"loss": "ce", "reduction": "sum"},
    "ce-none": {"loss": "ce", "reduction": "none"},
    "ce-smooth0.1": {"loss": "ce", "label_smoothing": 0.1},
    "bce": {"loss": "bce"},
    "focal2": {"loss": "focal", "gamma": 2.0},
    "isbe-softmax": {"loss": "isbe", "activation": "softmax"},
    "isbe-softmax-raw": {"loss": "isbe", "activation": "softmax", "reduction": "sum"},
    "isbe-sigmoid": {"loss": "isbe", "activation": "sigmoid"},
    "isbe-tanh": {"loss": "isbe", "activation": "tanh"},
    "isbe-hardsigmoid": {"loss": "isbe", "activation": "hardsigmoid"},
    "isbe-hardtanh": {"loss": "isbe", "activation": "hardtanh"},
}
BASELINE = "ce-mean"


@dataclass(frozen=True)
class ComparisonConfig:
    """What to compare; validated on construction.

    Attributes:
        seeds: Seeds, each used for every (arch, variant); >= 3 for a meaningful std.
        epochs: Epochs per run.
        archs: Architectures (registry keys or ``cnn``), e.g. ``("cnn", "mlp")``.
        variants: Keys of ``VARIANTS``.
        data: ``"digits"`` or a folder of images (one sub-folder per class).

    Raises:
        TrainingConfigError: For an unknown variant or architecture, no seeds, or epochs < 1.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 12
    archs: tuple[str, ...] = ("cnn", "mlp")
    variants: tuple[str, ...] = tuple(VARIANTS)
    data: str = "digits"

    def __post_init__(self) -> None:
        """Raise ``TrainingConfigError`` naming the first invalid option."""
        unknown = [name for name in self.variants if name not in VARIANTS]
        if unknown or not self.variants:
            raise TrainingConfigError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        if not self.seeds or not self.archs:
            raise TrainingConfigError("give at least one seed and one architecture")
        for arch in self.archs:
            self.train_config(arch, self.variants[0], self.seeds[0])  # validates arch and epochs

    def train_config(self, arch: str, variant: str, seed: int) -> TrainConfig:
        """The training options of one run."""
        return TrainConfig(
            name="compare", arch=arch, data=self.data, epochs=self.epochs, seed=seed, **VARIANTS[variant]
        )


def run_comparison(config: ComparisonConfig, *, progress: bool = False) -> list[dict[str, Any]]:
    """Train every (seed, arch, variant) on the same dataset and return one row per run.

    Runs are interleaved (all variants of a seed and arch back to back) so that load from other processes spreads
    over the variants instead of biasing one of them; each architecture first gets one untimed warm-up epoch.
    Training uses one thread (``TrainConfig.num_threads`` default).

    Args:
        config: What to compare.
        progress: Show a tqdm bar over the runs and one within each run (when stderr is a terminal).

    Returns:
        Rows with the keys ``arch``, ``loss``, ``activation``, ``seed``, ``test_accuracy``, ``forward_s``, ``loss_s``,
        ``backward_s``, plus ``variant``, ``reduction``, ``label_smoothing``, ``gamma``,
        ``epochs``, ``optimizer_s``, ``train_seconds``, median milliseconds per step (``forward_ms_median``,
        ``loss_ms_median``, ``backward_ms_median``, and ``step_ms_median`` of their per-step sum), ``l2_ce_spearman`` (mean per-query Spearman correlation
        between L2 and CE distances over the test split, see ``correlate_l2_with_ce``), ``p_inter_gt_intra`` and
        ``trajectory`` (per-epoch test accuracy).
    """
    data = load_dataset(config.data)
    for arch in config.archs:
        warm_up = replace(config.train_config(arch, BASELINE, 0), epochs=1)
        fit_classifier(warm_up, data)
    rows = []
    runs = tqdm(list(_runs(config)), desc="compare-training", unit="run", disable=None if progress else True)
    for seed, arch, variant in runs:
        rows.append(_run_one(config.train_config(arch, variant, seed), variant, data, progress))
        logger.info("%s %s seed %d: test accuracy %.4f", arch, variant, seed, rows[-1]["test_accuracy"])
    return rows


def correlate_l2_with_ce(logits: np.ndarray) -> np.ndarray:
    """Per query, the Spearman correlation between L2 distances and cross-entropies to the other rows.

    Query i ranks every other row j by ``||x_i - x_j||_2`` and by ``ce(x_i, x_j) = -sum_c softmax(x_i)_c
    log_softmax(x_j)_c`` (the query is the reference distribution, DESIGN.md); 1 means L2 search returns the CE
    order exactly.

    Args:
        logits: ``(n, C)`` float array, n >= 3.

    Returns:
        ``(n,)`` float64 correlations (NaN for a query whose distances are all equal).
    """
    x = np.asarray(logits, dtype=np.float64)
    n = len(x)
    l2 = cdist(x, x)
    shifted = x - x.max(axis=1, keepdims=True)
    log_q = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    ce = -np.exp(log_q) @ log_q.T
    others = ~np.eye(n, dtype=bool)
    l2, ce = l2[others].reshape(n, n - 1), ce[others].reshape(n, n - 1)
    return np.array([_spearman(l2[i], ce[i]) for i in range(n)])


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _runs(config: ComparisonConfig) -> Iterator[tuple[int, str, str]]:
    for seed in config.seeds:
        for arch in config.archs:
            for variant in config.variants:
                yield seed, arch, variant


def _run_one(train: TrainConfig, variant: str, data: LabeledImages, progress: bool) -> dict[str, Any]:
    result = fit_classifier(train, data, progress=progress)
    with torch.inference_mode():
        test_logits = torch.cat([result.module(x) for x in torch.split(data.inputs[~data.is_train], 1024)])
        test_ce = float(torch.nn.functional.cross_entropy(test_logits.double(), data.labels[~data.is_train]))
    logits = test_logits.numpy()
    last = result.trajectory[-1]
    loss = train.loss_config
    return {
        "arch": train.arch,
        "variant": variant,
        "loss": loss.name,
        "activation": loss.soft_activation,
        "reduction": loss.reduction,
        "label_smoothing": loss.label_smoothing,
        "gamma": loss.gamma if loss.name == "focal" else None,
        "seed": train.seed,
        "epochs": train.epochs,
        "test_accuracy": last["test_accuracy"],
        **{key: round(value, 5) for key, value in result.timings.items()},
        **_step_medians(result.step_seconds),
        "train_seconds": round(result.seconds, 3),
        "l2_ce_spearman": float(np.nanmean(correlate_l2_with_ce(logits))),
        "p_inter_gt_intra": last["p_inter_gt_intra"],
        "test_ce": test_ce,  # mean cross-entropy (nats) of softmax(logits) on the test split's labels
        "trajectory": [row["test_accuracy"] for row in result.trajectory],
    }


def _step_medians(step_seconds: dict[str, list[float]]) -> dict[str, float]:
    """Median milliseconds per optimiser step of each phase and of forward + loss + backward (robust to spikes)."""
    phases = {phase: np.asarray(step_seconds[f"{phase}_s"]) * 1000.0 for phase in ("forward", "loss", "backward")}
    medians = {f"{phase}_ms_median": float(np.median(ms)) for phase, ms in phases.items()}
    return {**medians, "step_ms_median": float(np.median(sum(phases.values())))}


def arch_label(arch: str) -> str:
    """Short display name of an architecture (``digits-cnn`` -> ``cnn``)."""
    return next((alias for alias, key in ARCH_ALIASES.items() if key == arch), arch)
