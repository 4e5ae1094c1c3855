"""Fashion-MNIST from Debian's `dataset-fashion-mnist` (skipped where the package is not installed)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from models import FASHION_LABELS, ModelNotFoundError, TrainConfig, load_fashion_images, train_classifier
from models.datasets import load_fashion_dataset
from tests.helpers import fashion_installed


def test_missing_files_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_images(tmp_path)


@fashion_installed
def test_reads_both_splits_as_published() -> None:
    data = load_fashion_images(limit=300)
    assert data.images.shape == (600, 28, 28) and data.images.dtype == np.uint8
    assert list(np.unique(data.split, return_counts=True)[1]) == [300, 300]
    assert set(data.labels.tolist()) == set(range(10))
    assert data.labels[0] == FASHION_LABELS.index("Ankle boot")  # the first training photo, as published
    assert data.index[:3].tolist() == [0, 1, 2] and data.index[300] == 0


@fashion_installed
def test_a_model_trains_on_it_through_the_serving_path(tmp_path: Path) -> None:
    data = load_fashion_dataset(limit=400)
    assert tuple(data.inputs.shape) == (800, 1, 28, 28) and data.source == "fashion-mnist"
    config = TrainConfig(name="fashion-cnn", data="fashion-mnist", epochs=2)
    classifier = train_classifier(config, tmp_path, device=torch.device("cpu"), data=data)
    spec = classifier.spec
    assert spec.labels == FASHION_LABELS and spec.input_size == (28, 28) and spec.num_classes == 10
    assert spec.training["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
