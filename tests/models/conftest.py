"""Fixtures for the models tests: a tiny saved classifier and the session-trained digits model (tests/conftest.py)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

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


def _write_image_folder(root: Path, sizes: tuple[tuple[int, int], ...] = ((8, 8),), mode: str = "L") -> Path:
    """Write a tiny learnable dataset: classes ``ant``, ``bee``, ``cow`` (a bright band at a class-specific row)."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("ant", "bee", "cow")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            width, height = sizes[i % len(sizes)]
            pixels = rng.integers(0, 60, size=(height, width), dtype=np.uint8)
            pixels[label * height // 3 : (label + 1) * height // 3] += 180
            Image.fromarray(pixels).convert(mode).save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture
def make_image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory ``(name, sizes=((8, 8),), mode="L") -> folder`` of 3 classes x 10 PNGs under ``tmp_path``."""
    return lambda name="animals", **options: _write_image_folder(tmp_path / name, **options)


@pytest.fixture
def image_folder(make_image_folder: Callable[..., Path]) -> Path:
    return make_image_folder()
