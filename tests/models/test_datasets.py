"""Tests for models/datasets.py: the digits default and folder-of-images datasets, and their rejections."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import ModelSpec, TrainingConfigError, decode_image, load_dataset, load_image_folder, preprocess
from models.datasets import FOLDER_INPUT_SIZE


def test_load_dataset_digits_split() -> None:
    data = load_dataset("digits")
    assert data.inputs.shape == (1797, 1, 8, 8) and data.source == "digits"
    assert int(data.is_train.sum()) == 1437 and data.spec_fields["num_classes"] == 10


def test_load_image_folder_matches_serving_path(image_folder: Path) -> None:
    data = load_image_folder(image_folder)
    fields = data.spec_fields
    assert fields["labels"] == ("ant", "bee", "cow") and fields["num_classes"] == 3
    assert fields["input_size"] == (8, 8) and fields["channels"] == 1 and data.source == str(image_folder)
    assert data.inputs.shape == (30, 1, 8, 8) and data.labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    assert (~data.is_train).sum() == 6 and torch.bincount(data.labels[~data.is_train]).tolist() == [2, 2, 2]
    train = data.inputs[data.is_train]
    assert abs(float(train.mean())) < 1e-3 and float(train.std()) == pytest.approx(1.0, abs=1e-2)
    spec = ModelSpec(name="animals", arch="mlp", **fields)
    paths = sorted(image_folder.glob("*/*.png"))
    served = preprocess([decode_image(p.read_bytes(), max_bytes=2**20, max_pixels=2**20) for p in paths], spec)
    assert torch.equal(served, data.inputs)  # bit-identical to what the service computes


def test_load_image_folder_split_is_seeded(image_folder: Path) -> None:
    assert torch.equal(load_image_folder(image_folder).is_train, load_image_folder(image_folder).is_train)


def test_load_image_folder_mixed_sizes_and_colour(make_image_folder: Callable[..., Path]) -> None:
    folder = make_image_folder("mixed", sizes=((10, 12), (20, 9)), mode="RGB")
    data = load_image_folder(folder)
    assert data.spec_fields["input_size"] == FOLDER_INPUT_SIZE and data.spec_fields["channels"] == 3
    assert data.inputs.shape == (30, 3, *FOLDER_INPUT_SIZE) and len(data.spec_fields["mean"]) == 3


def test_load_image_folder_skips_hidden_files(image_folder: Path) -> None:
    (image_folder / "ant" / ".DS_Store").write_bytes(b"\x00junk")
    (image_folder / ".cache").mkdir()
    assert len(load_image_folder(image_folder).labels) == 30


def test_load_image_folder_names_unreadable_file(image_folder: Path) -> None:
    bad = image_folder / "bee" / "notes.txt"
    bad.write_text("not an image")
    with pytest.raises(TrainingConfigError, match=r"bee/notes\.txt"):
        load_image_folder(image_folder)


def test_load_image_folder_enforces_limits(image_folder: Path) -> None:
    with pytest.raises(TrainingConfigError, match=r"00\.png.*limit"):
        load_image_folder(image_folder, max_pixels=10)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"only": 4}, "1 class sub-folder"),
        ({}, "0 class sub-folder"),
        ({"a": 4, "b": 1}, "class 'b' .* 1 image"),
        ({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2, "f": 2}, "cannot split"),
    ],
)
def test_load_image_folder_rejects_layout(tmp_path: Path, layout: dict[str, int], message: str) -> None:
    source = np.zeros((4, 4), dtype=np.uint8)
    for name, count in layout.items():
        (tmp_path / name).mkdir()
        for i in range(count):
            Image.fromarray(source).save(tmp_path / name / f"{i}.png")
    with pytest.raises(TrainingConfigError, match=message):
        load_image_folder(tmp_path)


def test_load_dataset_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TrainingConfigError, match="does not exist"):
        load_dataset(str(tmp_path / "nope"))
