"""The BLAS scan kernel: the same exact top-k as FAISS's flat search, for every metric, filter and k up to MAX_K."""

from collections.abc import Callable

import numpy as np
import pytest

from indexes.faiss_index import FaissIndex
from indexes.metrics import SEARCH_METRICS
from indexes.scan import (
    BLOCK_ROWS,
    GATHER_FRACTION,
    MAX_SCAN_QUERIES,
    MIN_BATCH_SCAN_VALUES,
    BlockGemm,
    _offer,
    _offer_rows,
    batch_gemm,
    numpy_gemm,
    prefers_scan,
    scan_candidates,
    torch_gemm,
)
from service.config import Settings

MAX_K = Settings.model_fields["max_k"].default


def _pair(items: np.ndarray, metadata: list[dict[str, int]]) -> tuple[FaissIndex, FaissIndex]:
    """Two indexes over the same rows, one forced onto each candidate kernel."""
    pair = FaissIndex(items.shape[1], kernel="faiss"), FaissIndex(items.shape[1], kernel="scan")
    ids = [f"i{n}" for n in range(len(items))]
    for index in pair:
        index.upsert(ids, items, metadata)
    return pair


def _assert_same(
    faiss_index: FaissIndex, scan_index: FaissIndex, queries: np.ndarray, k: int, **kwargs: object
) -> None:
    expected = faiss_index.search(queries, k, **kwargs).neighbors  # type: ignore[arg-type]
    got = scan_index.search(queries, k, **kwargs).neighbors  # type: ignore[arg-type]
    for want, have in zip(expected, got, strict=True):
        assert [h.id for h in have] == [h.id for h in want], kwargs
        np.testing.assert_allclose([h.distance for h in have], [h.distance for h in want], rtol=1e-12, atol=0)


@pytest.mark.parametrize("metric", SEARCH_METRICS)
def test_scan_agrees_with_faiss_under_every_metric_and_filter(metric: str) -> None:
    rng = np.random.default_rng(16)
    items = (rng.standard_normal((3000, 12)) * 3).astype(np.float32)
    faiss_index, scan_index = _pair(items, [{"label": n % 10, "half": n % 2} for n in range(len(items))])
    queries = np.vstack([items[:2].astype(np.float64), rng.standard_normal((3, 12)) * 3])
    for condition in (None, {"label": 4}, {"half": 1}, {"predicted": 3}):  # no mask, gathered, masked, argmax
        for k in (1, 10, 200):
            _assert_same(faiss_index, scan_index, queries, k, metric=metric, temperature=0.7, filter=condition)


@pytest.fixture(scope="module")
def two_blocks() -> tuple[FaissIndex, FaissIndex, np.ndarray]:
    """A FAISS and a scan index over two blocks of rows, the last partial, and two queries; built once (seconds)."""
    rng = np.random.default_rng(4096)
    items = (rng.standard_normal((BLOCK_ROWS + 6000, 8)) * 3).astype(np.float32)
    faiss_index, scan_index = _pair(items, [{"third": n % 3} for n in range(len(items))])
    return faiss_index, scan_index, rng.standard_normal((2, 8)) * 3


@pytest.mark.parametrize("metric", ["l2", "ce", "js"])
def test_scan_agrees_with_faiss_up_to_max_k_across_blocks(
    two_blocks: tuple[FaissIndex, FaissIndex, np.ndarray], metric: str
) -> None:
    faiss_index, scan_index, queries = two_blocks
    _assert_same(faiss_index, scan_index, queries, MAX_K, metric=metric)
    _assert_same(faiss_index, scan_index, queries, 1000, metric=metric, filter={"third": 0})


def test_scan_candidates_are_the_numpy_top_m() -> None:
    """Against float64 numpy: the m best rows per query (float32 scores), -1 past the rows a mask keeps."""
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((BLOCK_ROWS + 100, 6)).astype(np.float32)
    queries = rng.standard_normal((3, 6)).astype(np.float32)
    norms = (matrix.astype(np.float64) ** 2).sum(1).astype(np.float32)
    exact_ip = queries.astype(np.float64) @ matrix.T.astype(np.float64)
    exact_l2 = ((queries[:, None, :].astype(np.float64) - matrix[None]) ** 2).sum(-1)
    scores, positions = scan_candidates(matrix, None, queries, 25, "ip", None)
    assert (np.sort(positions, axis=1) == np.sort(np.argsort(-exact_ip, axis=1)[:, :25], axis=1)).all()
    np.testing.assert_allclose(scores, np.take_along_axis(exact_ip, positions, axis=1), rtol=1e-4, atol=1e-4)
    scores, positions = scan_candidates(matrix, norms, queries, 25, "l2", None)
    assert (np.sort(positions, axis=1) == np.sort(np.argsort(exact_l2, axis=1)[:, :25], axis=1)).all()
    np.testing.assert_allclose(scores, np.take_along_axis(exact_l2, positions, axis=1), rtol=1e-4, atol=1e-3)
    mask = np.zeros(len(matrix), bool)
    mask[[5, BLOCK_ROWS + 7]] = True
    for kind in ("ip", "l2"):
        scores, positions = scan_candidates(matrix, norms, queries, 4, kind, mask)  # type: ignore[arg-type]
        assert (np.sort(positions[:, :2], axis=1) == [5, BLOCK_ROWS + 7]).all() and (positions[:, 2:] == -1).all()
        assert np.isinf(scores[:, 2:]).all()


def test_scan_candidates_fill_up_from_later_blocks_when_the_mask_leaves_few_in_the_first() -> None:
    """A first block with fewer eligible rows than m sets no threshold: the later blocks' best still come in."""
    rng = np.random.default_rng(11)
    matrix = rng.standard_normal((BLOCK_ROWS + 100_000, 4)).astype(np.float32)
    queries = rng.standard_normal((1, 4)).astype(np.float32)
    mask = np.zeros(len(matrix), bool)
    mask[:10] = True  # 10 eligible rows in the first block, every row of the second
    mask[BLOCK_ROWS:] = True
    assert mask.mean() > GATHER_FRACTION  # scanned masked, not gathered
    exact_ip = np.where(mask, queries.astype(np.float64) @ matrix.T.astype(np.float64), -np.inf)
    scores, positions = scan_candidates(matrix, None, queries, 40, "ip", mask)
    assert (np.sort(positions[0]) == np.sort(np.argsort(-exact_ip[0])[:40])).all()
    np.testing.assert_allclose(scores[0], exact_ip[0, positions[0]], rtol=1e-4, atol=1e-4)
    assert (np.diff(scores[0]) <= 0).all()


def test_scan_agrees_with_faiss_for_batches_with_and_without_a_mask() -> None:
    """Batches take the GEMM path of the scan (FAISS's BLAS path on the other side), with runs that enter the
    heaps late and rows excluded by the mask."""
    rng = np.random.default_rng(64)
    items = (rng.standard_normal((5000, 10)) * 3).astype(np.float32)
    faiss_index, scan_index = _pair(items, [{"half": n % 2} for n in range(len(items))])
    queries = np.vstack([items[:3].astype(np.float64), rng.standard_normal((61, 10)) * 3])
    for metric in ("l2", "ce", "cosine"):
        for condition in (None, {"half": 0}):
            _assert_same(faiss_index, scan_index, queries, 25, metric=metric, filter=condition)
    _assert_same(faiss_index, scan_index, queries, MAX_K, metric="l2")  # m = 2 * MAX_K candidates of 5000


@pytest.mark.parametrize("gemm", [numpy_gemm, torch_gemm])
def test_block_gemms_score_row_ranges_as_float64_products(gemm: Callable[[np.ndarray, np.ndarray], BlockGemm]) -> None:
    """Either BLAS scores any range of rows (a full block, a short last one, one row) into the caller's buffer."""
    rng = np.random.default_rng(11)
    matrix = rng.standard_normal((1000, 37), dtype=np.float32)
    weights = rng.standard_normal((23, 37), dtype=np.float32)
    run = gemm(matrix, weights)
    for start, stop in ((0, 512), (512, 1000), (999, 1000)):
        out = np.full((len(weights), stop - start), np.nan, np.float32)
        run(start, stop, out)
        expected = weights.astype(np.float64) @ matrix[start:stop].astype(np.float64).T
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_batch_gemm_is_one_of_the_two_chosen_once_per_process() -> None:
    assert batch_gemm() in (numpy_gemm, torch_gemm)
    assert batch_gemm() is batch_gemm()


def test_compiled_selection_runs_its_python_source() -> None:
    """numba compiles `_offer_rows` (unsigned loop indices, in-place heap updates): the compiled kernel and the
    interpreted source leave the same heaps, across blocks, ties, excluded (+inf) rows and a heap never filled."""
    rng = np.random.default_rng(3)
    num_queries, m = 5, 7
    heaps = [(np.full((num_queries, m), np.inf, np.float32), np.full((num_queries, m), -1, np.int64)) for _ in range(2)]
    for block, start in enumerate(range(0, 600, 200)):
        scores = rng.integers(-50, 50, (num_queries, 200)).astype(np.float32)  # integers: many ties
        offsets = rng.standard_normal(200).astype(np.float32)
        offsets[rng.random(200) < 0.3] = np.inf
        if block == 0:
            scores[-1] = np.inf  # the last query sees nothing in the first block
        for offer, (costs, rows) in zip((_offer, _offer_rows), heaps, strict=True):
            offer(scores, offsets, start, costs, rows)
    (compiled_costs, compiled_rows), (python_costs, python_rows) = heaps
    np.testing.assert_array_equal(compiled_costs, python_costs)
    np.testing.assert_array_equal(compiled_rows, python_rows)
    assert (compiled_rows >= 0).all() and np.isfinite(compiled_costs).all()


def test_prefers_scan_for_small_batches_and_large_matrices() -> None:
    assert prefers_scan(1, 1000, 10) and prefers_scan(MAX_SCAN_QUERIES - 1, 1000, 10)
    assert not prefers_scan(MAX_SCAN_QUERIES, 1000, 10)
    assert prefers_scan(256, MIN_BATCH_SCAN_VALUES // 100, 100)
