"""Tests for models/training.py: accuracy of the default model, determinism, recorded metadata, validation."""

import dataclasses
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models import (
    Classifier,
    TrainConfig,
    TrainingConfigError,
    array_to_image,
    decode_image,
    load_digit_images,
    preprocess,
    train_classifier,
)
from models.separability import SEPARABILITY_KEYS

CPU = torch.device("cpu")


def test_train_default_digits_cnn_accuracy(digits_classifier: Classifier) -> None:
    training = digits_classifier.spec.training
    assert training["test_accuracy"] >= 0.97
    assert training["train_seconds"] > 0  # how fast: bench/, not a timed test (a busy machine took 113 s)
    assert digits_classifier.spec.arch == "digits-cnn" and digits_classifier.num_classes == 10


def test_train_records_config_and_trajectory(digits_classifier: Classifier, digits_models_dir: Path) -> None:
    training = digits_classifier.spec.training
    config = TrainConfig()
    for key in ("loss", "label_smoothing", "seed", "epochs", "lr", "batch_size", "reduction", "class_weights"):
        assert training[key] == getattr(config, key)
    assert training["activation"] == "softmax" and training["gamma"] is None and training["data"] == "digits"
    assert set(training["timings"]) == {"forward_s", "loss_s", "backward_s", "optimizer_s"}
    assert [row["epoch"] for row in training["trajectory"]] == list(range(1, config.epochs + 1))
    assert set(training["trajectory"][0]) == {"epoch", "train_loss", "test_accuracy", *SEPARABILITY_KEYS}
    last = training["trajectory"][-1]
    assert last["p_inter_gt_intra"] > 0.9 and last["inter_mean"] > last["intra_mean"]
    assert training["trajectory"][-1]["test_accuracy"] == training["test_accuracy"]
    saved = json.loads((digits_models_dir / "digits-cnn.json").read_text())
    assert saved["training"]["test_accuracy"] == training["test_accuracy"]


def test_train_served_path_matches_training_inputs(digits_classifier: Classifier) -> None:
    digits = load_digit_images()
    test_indices = np.flatnonzero(digits.split == "test")
    images = [array_to_image(digits.images[i]) for i in test_indices]
    inputs = preprocess(images, digits_classifier.spec)
    png_images = [decode_image(_png(image), max_bytes=10_000, max_pixels=10_000) for image in images[:20]]
    np.testing.assert_array_equal(
        digits_classifier.logits_from_images(png_images), digits_classifier.logits_from_tensor(inputs[:20])
    )
    accuracy = (digits_classifier.logits_from_tensor(inputs).argmax(axis=1) == digits.labels[test_indices]).mean()
    assert accuracy == pytest.approx(digits_classifier.spec.training["test_accuracy"])


def test_train_deterministic_for_seed(tmp_path: Path) -> None:
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    config = TrainConfig(name="det", epochs=2)
    first = train_classifier(config, tmp_path / "a", device=CPU, progress=False)
    second = train_classifier(config, tmp_path / "b", device=CPU, progress=False)
    other = train_classifier(dataclasses.replace(config, seed=1), tmp_path / "c", device=CPU, progress=False)
    assert first.spec.sha256 == second.spec.sha256
    for a, b in zip(first.module.state_dict().values(), second.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert other.spec.sha256 != first.spec.sha256
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is restored
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads


def test_train_mlp_with_label_smoothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TrainConfig(name="mlp-ls", arch="mlp", epochs=3, label_smoothing=0.1, arch_kwargs={"hidden": [32]})
    with caplog.at_level(logging.INFO, logger="models"):
        classifier = train_classifier(config, tmp_path, progress=True)
    assert "train mlp-ls" not in capsys.readouterr().err  # the tqdm bar shows on a terminal only
    assert any("trained mlp-ls: test accuracy" in record.getMessage() for record in caplog.records)
    assert classifier.spec.arch_kwargs == {"hidden": [32]}
    assert classifier.spec.training["label_smoothing"] == 0.1
    assert classifier.spec.training["test_accuracy"] > 0.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"arch": "resnet"}, "known architectures"),
        ({"loss": "hinge"}, "known losses"),
        ({"name": "a/b"}, "invalid model name"),
        ({"loss": "isbe", "activation": "relu"}, "known activations"),
        ({"loss": "bce", "activation": "tanh"}, "only with --loss isbe"),
        ({"loss": "focal", "gamma": -1.0}, "gamma"),
        ({"reduction": "avg"}, "reduction"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"class_weights": (1.0, -2.0)}, "class weights"),
        ({"data": ""}, "data"),
    ],
)
def test_train_config_invalid(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingConfigError, match=message):
        TrainConfig(**changes)


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_train_config_arch_alias() -> None:
    assert TrainConfig(arch="cnn").arch == "digits-cnn"
    assert TrainConfig(arch="digits-cnn").arch == "digits-cnn"


def test_train_rejects_class_weight_count_before_training(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match="3 class weights for 10 classes"):
        train_classifier(TrainConfig(name="w", class_weights=(1.0, 2.0, 3.0)), tmp_path, progress=False)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "ce", "reduction": "none"},
        {"loss": "bce"},
        {"loss": "focal", "gamma": 2.0},
        *({"loss": "isbe", "activation": activation} for activation in ("softmax", "sigmoid", "tanh", "hardsigmoid")),
        {"loss": "isbe", "activation": "hardtanh", "reduction": "sum", "label_smoothing": 0.1},
    ],
    ids=lambda options: "-".join(str(v) for v in options.values()),
)
def test_train_each_loss_learns(tmp_path: Path, options: dict[str, Any]) -> None:
    config = TrainConfig(name="variant", arch="mlp", epochs=4, arch_kwargs={"hidden": [64]}, **options)
    training = train_classifier(config, tmp_path, progress=False).spec.training
    assert training["test_accuracy"] > 0.85
    assert training["loss"] == options["loss"] and training["activation"] == options.get(
        "activation", training["activation"]
    )
    assert all(np.isfinite(row["train_loss"]) for row in training["trajectory"])


def test_train_isbe_deterministic_for_seed(tmp_path: Path) -> None:
    config = TrainConfig(
        name="isbe", arch="mlp", epochs=2, loss="isbe", activation="tanh", class_weights=(1.0,) * 9 + (2.0,)
    )
    first = train_classifier(config, tmp_path / "a", progress=False)
    second = train_classifier(config, tmp_path / "b", progress=False)
    assert first.spec.sha256 == second.spec.sha256
    assert first.spec.training["trajectory"] == second.spec.training["trajectory"]
    assert first.spec.training["class_weights"] == [1.0] * 9 + [2.0]


@pytest.mark.parametrize(("arch", "sizes"), [("cnn", ((8, 8),)), ("mlp", ((10, 12), (20, 9)))])
def test_train_on_image_folder_end_to_end(
    make_image_folder: Callable[..., Path], tmp_path: Path, arch: str, sizes: tuple[tuple[int, int], ...]
) -> None:
    folder = make_image_folder("animals", sizes=sizes)
    config = TrainConfig(name="animals", data=str(folder), arch=arch, epochs=15, loss="isbe", lr=3e-3)
    classifier = train_classifier(config, tmp_path / "models", progress=False)
    spec = classifier.spec
    assert spec.labels == ("ant", "bee", "cow") and spec.training["data"] == str(folder)
    assert (tmp_path / "models" / "animals.safetensors").is_file()
    paths = sorted(folder.glob("*/*.png"))
    images = [decode_image(p.read_bytes(), max_bytes=2**20, max_pixels=2**20) for p in paths]
    predicted = classifier.logits_from_images(images).argmax(axis=1)
    assert (predicted == np.repeat(np.arange(3), 10)).mean() >= 0.9
    assert spec.training["test_accuracy"] >= 0.8
