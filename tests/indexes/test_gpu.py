"""The GPU mirror of the index (`pytest -m gpu` on a machine with faiss-gpu and a CUDA device)."""

from pathlib import Path

import numpy as np
import pytest

from indexes.device import create_gpu_resources, faiss_gpu_available
from indexes.durable import DurableIndex
from indexes.faiss_index import GPU_MAX_K
from tests.helpers import assert_matches_brute_force, brute_force, brute_force_l2

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not faiss_gpu_available(), reason="needs faiss-gpu and a GPU")]
DIM = 16


def _open(path: Path) -> DurableIndex:
    return DurableIndex.open(
        path, name="g", model_name="m", model_sha256="0" * 64, dim=DIM, gpu_resources=create_gpu_resources("true")
    )


def test_gpu_search_matches_brute_force_across_writes(tmp_path: Path, rng: np.random.Generator) -> None:
    index = _open(tmp_path)
    assert index.device == "cuda" and index.index_type == "GpuIndexFlatL2"
    vectors = (rng.standard_normal((5000, DIM)) * 4).astype(np.float32)
    ids = [f"v{i}" for i in range(len(vectors))]
    index.upsert(ids, vectors)
    replacement = (rng.standard_normal((10, DIM)) * 4).astype(np.float32)
    index.upsert(ids[:10], replacement)  # overwrite rows: the GPU copy must follow
    index.delete(ids[10])
    vectors[:10] = replacement
    keep = [i for i in range(len(ids)) if i != 10]
    queries = (rng.standard_normal((300, DIM)) * 4).astype(np.float32)
    for k in (1, 10, GPU_MAX_K + 500):  # above the GPU limit the CPU copy answers
        result = index.search(queries[:50], k)
        assert_matches_brute_force(result, brute_force_l2(queries[:50], vectors[keep]), [ids[i] for i in keep], k)
    assert_matches_brute_force(
        index.search(queries, 10, filter=None), brute_force_l2(queries, vectors[keep]), [ids[i] for i in keep], 10
    )


def test_gpu_index_saves_through_cpu_copy(tmp_path: Path, rng: np.random.Generator) -> None:
    index = _open(tmp_path)
    vectors = rng.standard_normal((100, DIM)).astype(np.float32)
    index.upsert([f"v{i}" for i in range(100)], vectors)
    index.close()
    reopened = DurableIndex.open(tmp_path, name="g", model_name="m", model_sha256="0" * 64, dim=DIM)
    np.testing.assert_array_equal(reopened.get("v42").logits, vectors[42])


@pytest.mark.parametrize("metric", ["l2_centered", "ce", "kl", "kl_reverse", "js", "tri", "cosine"])
def test_gpu_divergence_metrics_match_brute_force(tmp_path: Path, rng: np.random.Generator, metric: str) -> None:
    index = _open(tmp_path)
    vectors = (rng.standard_normal((3000, DIM)) * 4).astype(np.float32)
    ids = [f"v{i}" for i in range(len(vectors))]
    index.upsert(ids, vectors)
    queries = (rng.standard_normal((40, DIM)) * 4).astype(np.float32)
    for k in (10, GPU_MAX_K + 100):
        result = index.search(queries, k, metric=metric, temperature=2.0)
        assert_matches_brute_force(result, brute_force(metric, queries, vectors, 2.0), ids, k, tol=1e-5)


def test_an_approximate_ivf_index_searches_on_the_gpu_with_exact_distances(tmp_path: Path) -> None:
    from indexes.ann import AnnOptions
    from tests.helpers import class_logits

    items = class_logits(np.random.default_rng(7), 20_000, DIM)
    index = DurableIndex.open(
        tmp_path, name="g", model_name="m", model_sha256="0" * 64, dim=DIM, gpu_resources=create_gpu_resources("true"),
        approximate=AnnOptions("ivf", metrics=("l2", "ce", "js"), temperatures=(1.0,)), settle_s=0.05,
    )  # fmt: skip
    try:
        index.upsert([f"i{i}" for i in range(len(items))], items)
        assert index.wait_for_approximate(timeout=300)
        state = index._index.approximate
        assert state is not None and all(s.gpu is not None for s in state.structures.values())
        queries = class_logits(np.random.default_rng(8), 50, DIM)
        for metric in ("l2", "ce", "js"):
            result = index.search(queries, 10, metric=metric)
            truth = brute_force(metric, queries, items)
            found = [[int(i[1:]) for i in hits.ids] for hits in result.columns()]
            recall = np.mean(
                [len(set(f) & set(np.argsort(t)[:10].tolist())) / 10 for f, t in zip(found, truth, strict=True)]
            )
            assert result.exact or (result.recall_at_10 is not None and recall >= 0.85)
            for rows, hits, row in zip(found, result.columns(), truth, strict=True):
                np.testing.assert_allclose(hits.distances, row[rows], rtol=1e-9, atol=1e-12)
    finally:
        index.close()
