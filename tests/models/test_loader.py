"""models/loader.py: decoding in DataLoader workers gives the logits of the upload path, in order, bad files named."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import Classifier, ModelError, ModelSpec
from models.loader import ImageFiles, PixelArrays, embed_dataset
from tests.helpers import UPLOAD_LIMITS as LIMITS
from tests.helpers import upload_path_logits, write_images


@pytest.mark.parametrize("workers", [0, 2])
def test_files_embed_as_uploads_would_in_order(
    tiny_classifier: Classifier, tmp_path: Path, rng: np.random.Generator, workers: int
) -> None:
    paths = write_images(tmp_path / "images", rng, 11)
    batches = list(embed_dataset(tiny_classifier, ImageFiles(paths, tiny_classifier.spec, **LIMITS), 4, workers))
    assert [len(b.positions) for b in batches] == [4, 4, 3]
    positions = np.concatenate([b.positions for b in batches])
    logits = np.concatenate([b.logits for b in batches])
    np.testing.assert_array_equal(positions, np.arange(11))
    assert logits.dtype == np.float32 and logits.flags.c_contiguous
    np.testing.assert_allclose(logits, upload_path_logits(tiny_classifier, paths), rtol=1e-5, atol=1e-6)


def test_unreadable_files_are_named_and_the_rest_embedded(
    tiny_classifier: Classifier, tmp_path: Path, rng: np.random.Generator
) -> None:
    paths = write_images(tmp_path / "images", rng, 5)
    paths[1].write_bytes(b"not an image")
    paths[3].write_bytes(paths[3].read_bytes()[:40])  # truncated
    batches = list(embed_dataset(tiny_classifier, ImageFiles(paths, tiny_classifier.spec, **LIMITS), 2, workers=1))
    positions = np.concatenate([b.positions for b in batches]).tolist()
    errors = [e for b in batches for e in b.errors]
    assert positions == [0, 2, 4]
    assert len(errors) == 2 and str(paths[1]) in errors[0] and str(paths[3]) in errors[1]
    good = [paths[i] for i in positions]
    logits = np.concatenate([b.logits for b in batches])
    np.testing.assert_allclose(logits, upload_path_logits(tiny_classifier, good), rtol=1e-5, atol=1e-6)


def test_a_batch_of_only_unreadable_files_yields_no_rows(tiny_classifier: Classifier, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"")
    (batch,) = embed_dataset(tiny_classifier, ImageFiles([bad], tiny_classifier.spec, **LIMITS), 8, workers=0)
    assert batch.logits.shape == (0, 4) and batch.positions.size == 0 and len(batch.errors) == 1


def test_pixel_arrays_embed_like_images(tiny_classifier: Classifier, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    (batch,) = embed_dataset(tiny_classifier, PixelArrays(pixels, tiny_classifier.spec), 16, workers=0)
    expected = tiny_classifier.logits_from_images([Image.fromarray(p) for p in pixels])
    np.testing.assert_allclose(batch.logits, expected, rtol=1e-5, atol=1e-6)


def test_pixel_arrays_in_rgb_for_a_cropping_spec(
    tiny_classifier: Classifier, tiny_spec: ModelSpec, rng: np.random.Generator
) -> None:
    spec = dataclasses.replace(tiny_spec, crop_pct=0.875, interpolation="bicubic")
    classifier = dataclasses.replace(tiny_classifier, spec=spec)
    pixels = rng.integers(0, 256, size=(3, 30, 50, 3), dtype=np.uint8)
    (batch,) = embed_dataset(classifier, PixelArrays(pixels, spec), 8, workers=1)
    np.testing.assert_allclose(
        batch.logits, classifier.logits_from_images([Image.fromarray(p) for p in pixels]), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"workers": -1}, "workers"),
        ({"precision": "bf16"}, "CUDA"),
    ],
)
def test_bad_options_are_refused(tiny_classifier: Classifier, options: dict[str, object], message: str) -> None:
    dataset = PixelArrays(np.zeros((1, 8, 8), dtype=np.uint8), tiny_classifier.spec)
    with pytest.raises(ModelError, match=message):
        next(embed_dataset(tiny_classifier, dataset, **options))  # type: ignore[arg-type]
