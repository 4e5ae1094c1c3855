"""Loading what the settings name: plugin modules that register architectures, missing models."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import ModelError, ModelNotFoundError, ModelSpec, create_model, save_classifier
from service.catalog.bootstrap import import_plugins, load_model
from service.catalog.firststart import first_start
from service.catalog.registry import Catalog
from service.config import Settings

PLUGIN = """
from torch import nn
from models import register_model


@register_model("plugin-linear")
def build(num_classes: int, in_channels: int, size: int = 8) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * size * size, num_classes))
"""


def test_plugin_module_registers_a_servable_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_plugin", raising=False)
    monkeypatch.setenv("LOGITSEARCH_PLUGINS", " my_plugin , ")
    settings = Settings(data_dir=tmp_path / "data", model="custom", index="custom", device="cpu")
    assert settings.plugins == ["my_plugin"]
    spec = ModelSpec(
        name="custom",
        arch="plugin-linear",
        num_classes=3,
        labels=("a", "b", "c"),
        input_size=(8, 8),
        channels=1,
        mean=(0.5,),
        std=(0.5,),
    )
    import my_plugin  # noqa: F401 - registers the architecture so the weights can be written

    save_classifier(create_model("plugin-linear", 3, 1), spec, settings.models_dir)
    classifier = load_model(settings)
    assert classifier.spec.arch == "plugin-linear"
    catalog = Catalog(settings)
    catalog.open()
    first_start(catalog)
    index = catalog.store("custom")
    assert index.count() == 0 and index.dim == 3  # only the default index is filled with the digits
    logits = classifier.logits_from_images([Image.new("L", (32, 32), 255)])
    index.upsert(["white"], logits)
    assert index.search(logits, 1).neighbors[0][0].id == "white"
    assert np.isfinite(logits).all()
    catalog.close()


def test_unknown_plugin_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no_such_module.*put that folder on PYTHONPATH"):
        load_model(Settings(data_dir=tmp_path, plugins=["no_such_module"]))


def test_import_plugins_finds_a_plugin_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cwd_plugin.py").write_text("LOADED = True\n")
    monkeypatch.chdir(tmp_path)
    # As under the `logitsearch` script, which puts its own folder on sys.path, not the working directory.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.delitem(sys.modules, "cwd_plugin", raising=False)
    import_plugins(["cwd_plugin"])
    assert sys.modules.pop("cwd_plugin").LOADED


def test_missing_custom_model_says_how_to_train(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="logitsearch train --name mine"):
        load_model(Settings(data_dir=tmp_path, model="mine", device="cpu"))


def test_the_model_cache_only_loads_and_first_start_trains_the_default(tmp_path: Path) -> None:
    """No training hides in a lookup: a missing default model is an error there, and first start trains it."""
    settings = Settings(data_dir=tmp_path, device="cpu", faiss_gpu="false", num_threads=2)
    with pytest.raises(ModelError, match="`logitsearch serve` trains it at its first start"):
        load_model(settings)
    catalog = Catalog(settings)
    catalog.open()
    try:
        first_start(catalog)
        assert catalog.ready() and catalog.store("default").count() == 1797
    finally:
        catalog.close()
