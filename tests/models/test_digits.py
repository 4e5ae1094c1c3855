"""Tests for models/digits.py."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from models import DIGITS_SPEC_DEFAULTS, load_digit_images


def test_load_digit_images_arrays() -> None:
    data = load_digit_images()
    assert data.images.shape == (1797, 8, 8) and data.images.dtype == np.uint8
    assert data.labels.shape == (1797,) and data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.images, np.round(load_digits().images * 255 / 16).astype(np.uint8))
    assert data.images.max() == 255


def test_load_digit_images_split_is_stratified_80_20() -> None:
    data = load_digit_images()
    assert set(data.split.tolist()) == {"train", "test"}
    assert int((data.split == "test").sum()) == 360
    for label in range(10):
        in_class = data.labels == label
        assert abs((data.split[in_class] == "test").mean() - 0.2) < 0.02


def test_load_digit_images_cached_and_read_only() -> None:
    data = load_digit_images()
    assert load_digit_images() is data
    with pytest.raises(ValueError):
        data.images[0, 0, 0] = 1


def test_digits_spec_defaults_match_train_pixels() -> None:
    data = load_digit_images()
    train = data.images[data.split == "train"] / 255.0
    assert DIGITS_SPEC_DEFAULTS["mean"][0] == pytest.approx(train.mean(), abs=1e-3)
    assert DIGITS_SPEC_DEFAULTS["std"][0] == pytest.approx(train.std(), abs=1e-3)
    assert DIGITS_SPEC_DEFAULTS["labels"] == tuple("0123456789")
