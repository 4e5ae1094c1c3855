"""The generated documentation is current: docs/configuration.md renders from service/config.py."""

import importlib.util
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_configuration_page_matches_settings() -> None:
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "gen_config.py")
    assert spec is not None and spec.loader is not None
    gen_config = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_config", gen_config)
    spec.loader.exec_module(gen_config)
    page = (DOCS / "configuration.md").read_text()
    assert page == gen_config.render(), "docs/configuration.md is stale: run `python docs/gen_config.py`"


def test_configuration_page_lists_every_setting() -> None:
    from service.config import Settings

    page = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`LOGITSEARCH_{name.upper()}`" in page


def test_docs_give_efficientnet_lite0_one_cost_the_one_measured() -> None:
    import re

    cost = r"(\d+)[–-](\d+) ms (?:an|per) image"
    measured = (DOCS.parent / "bench" / "results" / "2026-12-02-thumbnails.md").read_text()
    stated = [(DOCS / name).read_text() for name in ("models.md", "benchmarks.md", "index.md")]
    (source,) = set(re.findall(r"EfficientNet-Lite0 \(" + cost, measured))
    figures = {match for text in stated for match in re.findall(cost, text)}
    assert figures == {source}, (figures, source)
