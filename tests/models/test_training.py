"""Tests for models/training.py: accuracy of the default model, determinism, recorded metadata, validation."""

import dataclasses
import io
import json
import logging
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

CPU = torch.device("cpu")


def test_train_default_digits_cnn_accuracy(digits_classifier: Classifier) -> None:
    training = digits_classifier.spec.training
    assert training["test_accuracy"] >= 0.97
    assert training["train_seconds"] < 60
    assert digits_classifier.spec.arch == "digits-cnn" and digits_classifier.num_classes == 10


def test_train_records_config_and_trajectory(digits_classifier: Classifier, digits_models_dir: Path) -> None:
    training = digits_classifier.spec.training
    config = TrainConfig()
    for key in ("loss", "label_smoothing", "seed", "epochs", "lr", "batch_size"):
        assert training[key] == getattr(config, key)
    assert [row["epoch"] for row in training["trajectory"]] == list(range(1, config.epochs + 1))
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
    assert "train mlp-ls" in capsys.readouterr().err  # tqdm bar
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
    ],
)
def test_train_config_invalid(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(TrainingConfigError, match=message):
        TrainConfig(**changes)


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
