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
