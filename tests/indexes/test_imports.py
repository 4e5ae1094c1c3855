"""Importing `indexes` is light, and wherever FAISS loads, torch has loaded before it (both bundle OpenMP)."""

import pytest

from tests.helpers import modules_after


@pytest.mark.parametrize(
    "module", ["indexes.faiss_index", "indexes.derived", "indexes.snapshot", "indexes.device", "indexes.ann"]
)
def test_imports_torch_before_faiss(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert "faiss" in loaded and loaded.index("torch") < loaded.index("faiss")


def test_imports_errors_scan_and_metrics_load_no_torch_faiss_or_numba() -> None:
    loaded = set(modules_after("import indexes.errors, indexes.scan, indexes.metrics, indexes.validation"))
    assert loaded.isdisjoint({"torch", "faiss", "numba"})


def test_imports_scan_kernel_loads_on_first_use() -> None:
    loaded = modules_after(
        "import indexes.scan\nassert 'numba' not in __import__('sys').modules\nindexes.scan.load_kernel()"
    )
    assert "numba" in loaded
