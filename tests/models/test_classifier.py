"""Tests for models/classifier.py and models/embed.py: inference, save/load and integrity checks."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import (
    Classifier,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelSpec,
    array_to_image,
    create_model,
    load_classifier,
    logits_from_images,
    model_exists,
    save_classifier,
)

CPU = torch.device("cpu")


def random_images(rng: np.random.Generator, n: int, size: tuple[int, int] = (8, 8)) -> list[Image.Image]:
    return [array_to_image(rng.integers(0, 256, size=size, dtype=np.uint8)) for _ in range(n)]


def test_logits_from_images_float32_c_contiguous(rng: np.random.Generator) -> None:
    model = create_model("tiny-cnn", num_classes=5, in_channels=1, seed=0).eval()
    x = torch.from_numpy(rng.standard_normal((6, 1, 8, 8), dtype=np.float32))
    logits = logits_from_images(model, x, CPU)
    assert logits.shape == (6, 5) and logits.dtype == np.float32 and logits.flags["C_CONTIGUOUS"]


def test_classifier_logits_from_images(tiny_classifier: Classifier, rng: np.random.Generator) -> None:
    logits = tiny_classifier.logits_from_images(random_images(rng, 3, size=(20, 13)))
    assert logits.shape == (3, tiny_classifier.num_classes) and logits.dtype == np.float32
    assert logits.flags["C_CONTIGUOUS"]
    assert tiny_classifier.logits_from_images([]).shape == (0, 4)
    assert not tiny_classifier.module.training


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_classifier_logits_batch_size_invariant(
    digits_classifier: Classifier, rng: np.random.Generator, batch_size: int
) -> None:
    images = random_images(rng, 50)
    reference = digits_classifier.logits_from_images(images, batch_size=256)
    np.testing.assert_allclose(
        digits_classifier.logits_from_images(images, batch_size=batch_size), reference, atol=1e-5
    )


def test_save_load_round_trip_identical_logits(tiny_classifier: Classifier, tmp_path: Path) -> None:
    x = torch.linspace(-2, 2, 3 * 64).reshape(3, 1, 8, 8)
    reloaded = load_classifier(tmp_path, "tiny", CPU)
    np.testing.assert_array_equal(reloaded.logits_from_tensor(x), tiny_classifier.logits_from_tensor(x))
    assert reloaded.spec == tiny_classifier.spec and len(reloaded.spec.sha256) == 64


def test_save_classifier_writes_only_final_files(tiny_spec: ModelSpec, tmp_path: Path) -> None:
    saved = save_classifier(create_model("tiny-cnn", 4, 1), tiny_spec, tmp_path / "new")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["tiny.json", "tiny.safetensors"]
    assert ModelSpec.from_dict(json.loads((tmp_path / "new" / "tiny.json").read_text())) == saved
    assert os.stat(tmp_path / "new" / "tiny.safetensors").st_mode & 0o044 == 0o044  # readable by the server


def test_load_classifier_tampered_weights(tiny_classifier: Classifier, tmp_path: Path) -> None:
    weights = tmp_path / "tiny.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="tiny.safetensors has sha256"):
        load_classifier(tmp_path, "tiny", CPU)


def test_load_classifier_weights_do_not_fit_arch(tiny_classifier: Classifier, tmp_path: Path) -> None:
    spec = dataclasses.replace(tiny_classifier.spec, arch="mlp", arch_kwargs={})
    (tmp_path / "tiny.json").write_text(json.dumps(spec.to_dict()))
    with pytest.raises(ModelIntegrityError, match="does not fit architecture 'mlp'"):
        load_classifier(tmp_path, "tiny", CPU)


def test_load_classifier_invalid_json(tiny_classifier: Classifier, tmp_path: Path) -> None:
    (tmp_path / "tiny.json").write_text("{not json")
    with pytest.raises(ModelIntegrityError, match="not valid JSON"):
        load_classifier(tmp_path, "tiny", CPU)


def test_load_classifier_name_mismatch(tiny_classifier: Classifier, tmp_path: Path) -> None:
    for suffix in (".json", ".safetensors"):
        (tmp_path / f"tiny{suffix}").rename(tmp_path / f"renamed{suffix}")
    with pytest.raises(ModelIntegrityError, match="describes model 'tiny'"):
        load_classifier(tmp_path, "renamed", CPU)


def test_load_classifier_missing(tiny_classifier: Classifier, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model 'other' in .*logitsearch train --name other"):
        load_classifier(tmp_path, "other", CPU)
    (tmp_path / "tiny.safetensors").unlink()
    with pytest.raises(ModelNotFoundError):
        load_classifier(tmp_path, "tiny", CPU)


def test_model_exists(tiny_classifier: Classifier, tmp_path: Path) -> None:
    assert model_exists(tmp_path, "tiny")
    assert not model_exists(tmp_path, "other")
    assert not model_exists(tmp_path, "../tiny")
    with pytest.raises(ModelNotFoundError, match="invalid model name"):
        load_classifier(tmp_path, "../tiny", CPU)


def test_save_classifier_is_byte_reproducible(tiny_classifier: Classifier, tmp_path: Path) -> None:
    digests = {
        save_classifier(tiny_classifier.module, tiny_classifier.spec, tmp_path / str(i)).sha256 for i in range(5)
    }
    assert digests == {tiny_classifier.spec.sha256}
