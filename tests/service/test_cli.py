"""The CLI in-process through `main([...])`: index a folder of images, train a model, settings flags."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from indexes.durable import DurableIndex
from models import load_classifier
from service.bootstrap import load_model
from service.cli import build_parser, main, settings_from_args
from service.config import Settings


def _write_folder(root: Path, rng: np.random.Generator) -> None:
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, size=(20, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def test_index_folder_of_images(settings: Settings, tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "images"
    _write_folder(folder, rng)
    args = [
        "index",
        "--images",
        str(folder),
        "--index",
        "pets",
        "--data-dir",
        str(settings.data_dir),
        "--device",
        "cpu",
        "--faiss-gpu",
        "false",
    ]
    assert main(args) == 0
    classifier = load_model(settings)
    index = DurableIndex.open(
        settings.data_dir / "indexes" / "pets",
        name="pets",
        model_name="digits-cnn",
        model_sha256=classifier.spec.sha256,
        dim=10,
    )
    items = list(index.iter_items())
    assert [item.id for item in items] == [f"{label}/{i}.png" for label in ("cats", "dogs") for i in range(3)]
    assert items[4].metadata == {"path": "dogs/1.png", "label": "dogs"}
    expected = classifier.logits_from_images([Image.open(folder / "dogs" / "1.png")])[0]
    np.testing.assert_allclose(items[4].logits, expected, atol=1e-5)


def test_index_refuses_unreadable_file(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "fake.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="fake.png"):
        main(["index", "--images", str(folder), "--index", "broken", "--data-dir", str(settings.data_dir)])


def test_train_writes_servable_model(tmp_path: Path) -> None:
    assert main(["train", "--name", "quick", "--arch", "mlp", "--epochs", "2", "--data-dir", str(tmp_path)]) == 0
    classifier = load_classifier(tmp_path / "models", "quick", torch.device("cpu"))
    assert classifier.spec.arch == "mlp" and classifier.spec.training["epochs"] == 2
    assert classifier.logits_from_images([Image.new("L", (8, 8))]).shape == (1, 10)


def test_settings_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGITSEARCH_PORT", "9000")
    monkeypatch.setenv("LOGITSEARCH_MAX_K", "7")
    args = build_parser().parse_args(["serve", "--port", "9100", "--protect-reads"])
    settings = settings_from_args(args)
    assert (settings.port, settings.max_k, settings.protect_reads) == (9100, 7, True)
