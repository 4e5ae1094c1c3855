"""Offline work on models: `train`, `compare-training` and `evaluate`."""

import argparse
import logging
from pathlib import Path
from typing import Any

from ..config import Settings
from .options import (
    INDEX_SETTINGS,
    TRAIN_SETTINGS,
    add_settings_flags,
    floats,
    ints,
    require_matplotlib,
    settings_from_args,
    strings,
)

logger = logging.getLogger("service.cli")


_TRAIN_OPTIONS = (
    "data", "arch", "loss", "activation", "reduction", "label_smoothing", "class_weights", "gamma", "epochs",
    "batch_size", "lr", "seed",
)  # fmt: skip


def train_model(args: argparse.Namespace) -> int:
    from models import TrainConfig, TrainingConfigError, load_dataset, train_classifier
    from models.device import resolve_device

    from ..catalog.bootstrap import training_lock

    settings = settings_from_args(args)
    options = {k: getattr(args, k) for k in _TRAIN_OPTIONS if getattr(args, k) is not None}
    try:
        config = TrainConfig(name=args.name, **options)
        # Training images get the same size limits as uploads (--max-image-bytes, --max-image-pixels).
        data = load_dataset(config.data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        device = resolve_device(settings.device)
        with training_lock(settings.models_dir, config.name):
            if not _may_replace(settings, config.name, args.force):
                return 2
            classifier = train_classifier(config, settings.models_dir, device=device, data=data)
    except TrainingConfigError as e:
        logger.error("cannot train %s: %s", args.name, e)
        return 2
    logger.info(
        "saved %s: test accuracy %.4f",
        settings.models_dir / f"{args.name}.safetensors",
        classifier.spec.training.get("test_accuracy", float("nan")),
    )
    return 0


def _may_replace(settings: Settings, name: str, force: bool) -> bool:
    """Whether model `name` may be trained over: it is absent, no index holds its logits, or `force`, in which
    case its weights are kept aside first and the indexes bound to it stay unavailable until rebuilt."""
    from models import model_exists
    from models.classifier import keep_model_copy

    from ..catalog.entries import bound_indexes

    bound = bound_indexes(settings.indexes_dir, name) if model_exists(settings.models_dir, name) else []
    if not bound:
        return True
    indexes = ("index " if len(bound) == 1 else "indexes ") + ", ".join(repr(index) for index in bound)
    if not force:
        logger.error(
            "model %r exists and %s holds its logits; train under another --name, or add --force to replace "
            "it (its weights are kept under %s, and %s stays unavailable until rebuilt)",
            name, indexes, settings.models_dir / "replaced", indexes,
        )  # fmt: skip
        return False
    kept = keep_model_copy(settings.models_dir, name)
    logger.warning(
        "replacing model %r: its weights are kept in %s; %s holds their logits and is unavailable until "
        "rebuilt (logitsearch index --index NAME --rebuild) or until those files are copied back",
        name, kept, indexes,
    )  # fmt: skip
    return True


def add_train_options(train: argparse.ArgumentParser) -> None:
    from models.losses import ACTIVATIONS, LOSS_NAMES, REDUCTIONS

    train.add_argument("--name", required=True, help="model name: DATA_DIR/models/NAME.safetensors + NAME.json")
    train.add_argument(
        "--force",
        action="store_true",
        help="replace a model that indexes are bound to (its weights are kept under DATA_DIR/models/replaced/)",
    )
    train.add_argument(
        "--data", help="'digits' (default), 'fashion-mnist' (Debian's package) or a folder of one sub-folder per class"
    )
    train.add_argument("--arch", help="architecture: cnn (= digits-cnn, default), mlp, or another registry key")
    train.add_argument("--loss", choices=LOSS_NAMES, help="training objective (default ce)")
    train.add_argument("--activation", choices=list(ACTIVATIONS), help="ISBE soft score (default softmax)")
    train.add_argument("--reduction", choices=REDUCTIONS, help="batch reduction (default mean)")
    train.add_argument("--label-smoothing", type=float, help="target blurring in [0, 1) (default 0)")
    train.add_argument("--class-weights", type=floats, help="comma-separated positive weight per class")
    train.add_argument("--gamma", type=float, help="focal loss gamma >= 0 (default 2)")
    train.add_argument("--epochs", type=int, help="passes over the train split (default 30)")
    train.add_argument("--batch-size", type=int, help="images per optimiser step (default 64)")
    train.add_argument("--lr", type=float, help="AdamW learning rate (default 0.001)")
    train.add_argument("--seed", type=int, help="seeds weight init, dropout and shuffling (default 0)")
    add_settings_flags(train, TRAIN_SETTINGS)


def compare_training(args: argparse.Namespace) -> int:
    from models import TrainingConfigError
    from models.comparison import ComparisonConfig, run_comparison
    from models.report import write_report

    require_matplotlib("compare-training")
    options = {k: getattr(args, k) for k in ("seeds", "epochs", "archs", "variants", "data") if getattr(args, k)}
    try:
        config = ComparisonConfig(**options)
    except TrainingConfigError as e:
        logger.error("cannot compare: %s", e)
        return 2
    command = (
        f"logitsearch compare-training --out {args.out} --seeds {','.join(map(str, config.seeds))} "
        f"--epochs {config.epochs} --archs {','.join(config.archs)} --data {config.data}"
    )
    paths = write_report(run_comparison(config, progress=True), config, args.out, command=command)
    logger.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def add_compare_options(compare: argparse.ArgumentParser) -> None:
    from models.comparison import VARIANTS

    compare.add_argument("--out", type=Path, required=True, help="writes OUT/results.json, results.md and PNG plots")
    compare.add_argument("--seeds", type=ints, help="comma-separated seeds (default 0,1,2)")
    compare.add_argument("--epochs", type=int, help="epochs per run (default 12)")
    compare.add_argument("--archs", type=strings, help="comma-separated architectures (default cnn,mlp)")
    compare.add_argument("--variants", type=strings, help=f"comma-separated, default all: {','.join(VARIANTS)}")
    compare.add_argument("--data", help="'digits' (default) or a folder with one sub-folder of images per class")


_EVALUATE_OPTIONS = ("num_queries", "temperatures", "k", "metrics", "seed", "num_items", "kendall_items", "num_pairs")


def evaluate_index(args: argparse.Namespace) -> int:
    from evaluation.options import EvaluationOptions
    from evaluation.report import evaluate_store, write_report
    from indexes.device import configure_cpu

    from ..catalog.firststart import first_start
    from ..catalog.registry import Catalog

    require_matplotlib("evaluate")
    options = EvaluationOptions(**{k: getattr(args, k) for k in _EVALUATE_OPTIONS if getattr(args, k) is not None})
    settings = settings_from_args(args)
    configure_cpu(settings.num_threads)
    catalog = Catalog(settings)
    catalog.open(names=[settings.index])
    first_start(catalog, progress=True)
    try:
        classifier = catalog.index_model(settings.index)
        report = evaluate_store(catalog.store(settings.index), classifier.spec, options, progress=True)
    finally:
        catalog.close()
    paths = write_report(report, args.out)
    logger.info("%s = %.4f; wrote %s", report["primary_metric"]["name"], report["primary_metric"]["value"], paths[0])
    return 0


def add_evaluate_options(evaluate: argparse.ArgumentParser) -> None:
    def numbers(kind: type) -> Any:
        return lambda text: tuple(kind(v) for v in text.split(",") if v.strip())

    evaluate.add_argument("--out", type=Path, required=True, help="writes OUT/report.json, report.md and PNG plots")
    evaluate.add_argument("--num-queries", type=int, help="queries sampled (test split first); default 200")
    evaluate.add_argument("--temperatures", type=numbers(float), help="comma-separated; default 0.1,0.5,1,...,100")
    evaluate.add_argument("-k", type=int, help="neighbours for overlap/recall/nDCG/label precision; default 10")
    evaluate.add_argument(
        "--metrics", type=numbers(str), help="comma-separated, default l2,l2_centered,kl,js,tri,cosine"
    )
    evaluate.add_argument("--seed", type=int, help="seeds every sample; default 0")
    evaluate.add_argument("--num-items", type=int, help="rank against a seeded sample of this many items (default all)")
    evaluate.add_argument(
        "--kendall-items", type=int, help="Kendall tau over a sample of this many items; default 2000"
    )
    evaluate.add_argument("--num-pairs", type=int, help="random pairs for the measure correlations; default 10000")
    add_settings_flags(evaluate, INDEX_SETTINGS)
