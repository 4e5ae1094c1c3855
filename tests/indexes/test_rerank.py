"""The exact re-rank's scan of every item, a chunk at a time (`scan_top`), against the one-shot scan."""

import numpy as np
import pytest

from indexes.rerank import TopK, _scan, scan_top


class _All:
    """A candidate source that only lists every item (what `_scan` reads)."""

    def __init__(self, items: np.ndarray) -> None:
        self.items = items

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(len(self.items), dtype=np.int64), self.items


@pytest.mark.parametrize("metric", ["ce", "kl", "js", "l2"])
@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_scan_top_in_chunks_equals_the_whole_scan(metric: str, size: int, rng: np.random.Generator) -> None:
    items = (rng.standard_normal((300, 8)) * 3).astype(np.float32)
    items[150:170] = items[10]  # ties at the k-th value across chunks
    queries = np.vstack([rng.standard_normal((5, 8)) * 3, items[10:11]]).astype(np.float64)
    whole: list[TopK] = [(np.empty(0, np.int64), np.empty(0))] * len(queries)
    _scan(_All(items), queries, np.arange(len(queries)), 10, metric, 0.7, whole)  # type: ignore[arg-type]
    keys = np.arange(len(items), dtype=np.int64)
    chunks = ((keys[i : i + size], items[i : i + size]) for i in range(0, len(items), size))
    for (got_keys, got_values), (want_keys, want_values) in zip(
        scan_top(chunks, queries, 10, metric, 0.7), whole, strict=True
    ):
        np.testing.assert_array_equal(got_keys, want_keys)
        np.testing.assert_allclose(got_values, want_values, rtol=1e-12)  # BLAS blocks round differently
