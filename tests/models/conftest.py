"""Fixtures for the models tests: a tiny saved classifier and the session-trained digits model (tests/conftest.py)."""

from pathlib import Path

import pytest
import torch

from models import Classifier, ModelSpec, create_model, load_classifier, save_classifier

CPU = torch.device("cpu")


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return ModelSpec(
        name="tiny",
        arch="tiny-cnn",
        num_classes=4,
        labels=("a", "b", "c", "d"),
        input_size=(8, 8),
        channels=1,
        mean=(0.5,),
        std=(0.25,),
        arch_kwargs={"seed": 0},
    )


@pytest.fixture
def tiny_classifier(tiny_spec: ModelSpec, tmp_path: Path) -> Classifier:
    module = create_model(tiny_spec.arch, tiny_spec.num_classes, tiny_spec.channels, **tiny_spec.arch_kwargs)
    save_classifier(module, tiny_spec, tmp_path)
    return load_classifier(tmp_path, tiny_spec.name, CPU)


@pytest.fixture
def digits_classifier(digits_models_dir: Path) -> Classifier:
    return load_classifier(digits_models_dir, "digits-cnn", CPU)
