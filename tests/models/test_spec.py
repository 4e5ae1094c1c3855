"""Tests for models/spec.py."""

import dataclasses
import json
from typing import Any

import pytest

from models import ModelIntegrityError, ModelSpec


def test_spec_json_round_trip(tiny_spec: ModelSpec) -> None:
    spec = dataclasses.replace(tiny_spec, sha256="ab" * 32, training={"loss": "ce", "trajectory": [{"epoch": 1}]})
    restored = ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert restored == spec
    assert isinstance(restored.labels, tuple) and isinstance(restored.input_size, tuple)


def test_spec_from_dict_ignores_unknown_keys(tiny_spec: ModelSpec) -> None:
    assert ModelSpec.from_dict({**tiny_spec.to_dict(), "added_later": 1}) == tiny_spec


def test_spec_from_dict_missing_field(tiny_spec: ModelSpec) -> None:
    data = tiny_spec.to_dict()
    del data["labels"]
    with pytest.raises(ModelIntegrityError, match="labels"):
        ModelSpec.from_dict(data)


@pytest.mark.parametrize(
    "changes",
    [
        {"channels": 2},
        {"num_classes": 5},
        {"num_classes": "4"},
        {"labels": "abcd"},
        {"input_size": [8]},
        {"std": [0.0]},
        {"mean": [0.1, 0.2]},
        {"name": "../evil"},
        {"sha256": "not-a-digest"},
        {"arch_kwargs": []},
        {"crop_pct": 0},
        {"crop_pct": 1.5},
        {"crop_pct": float("nan")},
        {"crop_pct": "0.875"},
        {"crop_pct": True},
        {"interpolation": "nearest"},
        {"source": "pypi"},
    ],
)
def test_spec_from_dict_invalid_field(tiny_spec: ModelSpec, changes: dict[str, Any]) -> None:
    with pytest.raises(ModelIntegrityError):
        ModelSpec.from_dict({**tiny_spec.to_dict(), **changes})


def test_spec_from_dict_not_an_object() -> None:
    with pytest.raises(ModelIntegrityError, match="JSON object"):
        ModelSpec.from_dict([1, 2])  # type: ignore[arg-type]


def test_spec_written_before_preprocessing_options_loads_with_the_old_behaviour(tiny_spec: ModelSpec) -> None:
    data = tiny_spec.to_dict()
    for key in ("crop_pct", "interpolation", "source"):
        del data[key]
    spec = ModelSpec.from_dict(data)
    assert (spec.crop_pct, spec.interpolation, spec.source) == (None, "bilinear", {})


def test_spec_round_trips_preprocessing_and_source(tiny_spec: ModelSpec) -> None:
    spec = dataclasses.replace(tiny_spec, crop_pct=0.875, interpolation="bicubic", source={"weights_version": "0.1"})
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
