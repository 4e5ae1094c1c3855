"""`logitsearch index --data fashion-mnist`: ids, metadata, the model of the index, and resuming."""

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from models import FASHION_LABELS, TrainConfig, load_classifier, load_fashion_images, train_classifier
from models.datasets import load_fashion_dataset
from service.catalog.registry import Catalog
from service.cli import main
from service.config import Settings
from tests.helpers import fashion_installed


@fashion_installed
def test_index_fashion_mnist_resumes(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    train_classifier(
        TrainConfig(name="fashion-cnn", epochs=1), settings.models_dir, data=load_fashion_dataset(limit=200)
    )
    flags = ["--data-dir", str(settings.data_dir), "--device", "cpu", "--faiss-gpu", "false"]
    command = ["index", "--data", "fashion-mnist", "--limit", "60", "--index", "fashion", "--model", "fashion-cnn"]
    assert main([*command, *flags]) == 0
    assert main([*command, *flags]) == 0  # a second run adds nothing
    assert any("holds 120 of the 120 items already" in r.getMessage() for r in caplog.records)
    catalog = Catalog(settings)
    catalog.open(["fashion"])
    try:
        index = catalog.store("fashion")
        assert index.count() == 120
        item = index.get("fashion-test-7")
        photos = load_fashion_images(limit=60)
        row = int(np.flatnonzero((photos.split == "test") & (photos.index == 7))[0])
        label = int(photos.labels[row])
        assert item.metadata == {"label": label, "label_name": FASHION_LABELS[label], "split": "test"}
        model = load_classifier(settings.models_dir, "fashion-cnn", torch.device("cpu"))
        expected = model.logits_from_images([Image.fromarray(photos.images[row], mode="L")])[0]
        np.testing.assert_allclose(item.logits, expected, atol=1e-5)
    finally:
        catalog.close()
