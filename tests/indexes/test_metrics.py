"""Every search metric returns the exact top-k of an independent scipy brute force, for any T, k and filter."""

import mpmath
import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from indexes import rerank
from indexes.device import configure_cpu
from indexes.faiss_index import FaissIndex
from indexes.metrics import (
    EMBEDDINGS,
    SEARCH_METRICS,
    candidate_lower_bound,
    hellinger_factors,
    js_hellinger_bounds,
)
from indexes.scan import scan_candidates
from tests.helpers import assert_matches_brute_force, brute_force, precise_divergences


def _index(vectors: np.ndarray) -> tuple[FaissIndex, list[str]]:
    index = FaissIndex(vectors.shape[1])
    ids = [f"i{j}" for j in range(len(vectors))]
    index.upsert(ids, vectors, [{"parity": j % 2} for j in range(len(vectors))])
    return index, ids


@pytest.mark.parametrize("metric", SEARCH_METRICS)
@pytest.mark.parametrize("temperature", [0.05, 1.0, 8.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_metric_matches_brute_force(metric: str, temperature: float, seed: int) -> None:
    configure_cpu(2)
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((600, 10)) * 4).astype(np.float32)
    queries = (rng.standard_normal((40, 10)) * 4).astype(np.float32)
    index, ids = _index(vectors)
    oracle = brute_force(metric, queries, vectors, temperature)
    for k in (1, 10, 120):
        result = index.search(queries, k, metric=metric, temperature=temperature)
        assert_matches_brute_force(result, oracle, ids, k, tol=1e-5)


@pytest.mark.parametrize("metric", SEARCH_METRICS)
def test_metric_with_filter_and_k_above_matches(metric: str, rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((300, 20)) * 3).astype(np.float32)
    queries = (rng.standard_normal((5, 20)) * 3).astype(np.float32)
    index, ids = _index(vectors)
    odd = np.arange(300) % 2 == 1
    result = index.search(queries, 500, {"parity": 1}, metric=metric, temperature=2.0)
    kept = [i for i, keep in zip(ids, odd, strict=True) if keep]
    assert_matches_brute_force(result, brute_force(metric, queries, vectors[odd], 2.0), kept, 500, tol=1e-5)


@pytest.mark.parametrize("metric", SEARCH_METRICS)
def test_item_is_its_own_nearest_neighbour(metric: str, rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((200, 10)) * 5).astype(np.float32)
    index, ids = _index(vectors)
    result = index.search(vectors[:20], 1, metric=metric, temperature=0.5)
    if metric == "ce":  # ce(a, a) = H(p) is not 0 and need not be the minimum
        return
    assert [hits[0].id for hits in result.neighbors] == ids[:20]
    assert max(hits[0].distance for hits in result.neighbors) < 1e-6


@pytest.mark.parametrize("metric", SEARCH_METRICS)
@pytest.mark.parametrize("temperature", [0.01, 1000.0])
def test_extreme_logits_and_temperatures(metric: str, temperature: float, rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((150, 1000)) * 1e4).astype(np.float32)
    vectors[:5] = vectors[5:10] + rng.standard_normal((5, 1000)).astype(np.float32)  # near duplicates
    queries = vectors[:8] + rng.standard_normal((8, 1000)).astype(np.float32)
    index, ids = _index(vectors)
    result = index.search(queries, 7, metric=metric, temperature=temperature)
    distances = np.array([[h.distance for h in hits] for hits in result.neighbors])
    assert np.isfinite(distances).all()
    assert_matches_brute_force(result, brute_force(metric, queries, vectors, temperature), ids, 7, tol=1e-5)


def test_hellinger_bounds_hold(rng: np.random.Generator) -> None:
    p = rng.dirichlet(np.full(10, 0.3), size=2000)
    q = rng.dirichlet(np.full(10, 0.3), size=2000)
    inner = np.sum(np.sqrt(p * q), axis=1)
    js = jensenshannon(p, q, axis=1) ** 2
    tri = np.sum((p - q) ** 2 / np.maximum(p + q, 1e-300), axis=1)
    unused = np.zeros((2000, 10))
    assert np.all(candidate_lower_bound("js", inner, unused, 1.0) <= js + 1e-12)
    assert np.all(candidate_lower_bound("tri", inner, unused, 1.0) <= tri + 1e-12)
    assert np.all(tri <= 2 * (2 - 2 * inner) + 1e-12)  # the bound is within a factor 2 for tri


def _js_and_hellinger(p: list[mpmath.mpf], q: list[mpmath.mpf]) -> tuple[mpmath.mpf, mpmath.mpf]:
    """Jensen–Shannon (nats) and `s = ‖√p − √q‖²` in 340-digit arithmetic."""
    js = mpmath.mpf(0)
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        js += (a * mpmath.log(a / m) if a > 0 else 0) + (b * mpmath.log(b / m) if b > 0 else 0)
    s = mpmath.fsum((mpmath.sqrt(a) - mpmath.sqrt(b)) ** 2 for a, b in zip(p, q, strict=True))
    return js / 2, s


def _adversarial_pairs(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where either bound is tight or nearly so: disjoint supports, near-identical, a tiny mass moved, one-hot
    against uniform, two classes at every ratio."""
    pairs = [(np.array([1.0, 0.0]), np.array([0.0, 1.0])), (np.eye(5)[0], np.eye(5)[4])]
    base = rng.dirichlet(np.ones(8))
    for eps in (1e-3, 1e-8, 1e-15):
        nudged = base * (1 + eps * rng.standard_normal(8))
        pairs.append((base, nudged / nudged.sum()))
        moved = np.array([1 - eps, eps, 0.0])
        pairs.append((moved, np.array([eps, 1 - eps, 0.0])))
        pairs.append((np.array([1 - eps, eps]), np.array([1.0, 0.0])))
    pairs.append((np.eye(1000)[0], np.full(1000, 1e-3)))
    for ratio in np.geomspace(1e-12, 1.0, 25):
        pairs.append((np.array([1.0, ratio]) / (1 + ratio), np.array([ratio, 1.0]) / (1 + ratio)))
    return pairs


def test_js_hellinger_bounds_against_the_oracle(rng: np.random.Generator) -> None:
    """`(ln 2 / 2) s ≤ js ≤ s / 2` (the proof in `js_hellinger_bounds`) holds in 340-digit arithmetic on random
    and adversarial pairs, both ends are reached, and it is the bound the certificate uses."""
    random = [(rng.dirichlet(np.full(c, a)), rng.dirichlet(np.full(c, a))) for c in (2, 10, 100) for a in (0.05, 1)]
    ratios = []
    for p, q in [*random, *_adversarial_pairs(rng)]:
        js, s = _js_and_hellinger([mpmath.mpf(float(v)) for v in p], [mpmath.mpf(float(v)) for v in q])
        if s == 0:
            continue
        assert mpmath.log(2) / 2 * s <= js <= s / 2, (p, q)
        ratios.append(js / s)
        lower, upper = js_hellinger_bounds(np.array(float(s)))
        assert lower <= float(js) * (1 + 1e-15) and float(js) <= upper * (1 + 1e-15)
    assert min(ratios) < mpmath.log(2) / 2 + 1e-12 and max(ratios) > 0.5 - 1e-6  # both bounds are tight
    inner = np.array([1.0 - float(s) / 2 for s in (0.5, 1.0)])  # the certificate from an exact score √p · √q
    assert np.allclose(
        candidate_lower_bound("js", inner, np.zeros((2, 10)), 1.0), np.log(2) / 2 * np.array([0.5, 1.0]), rtol=1e-3
    )


@pytest.mark.parametrize("temperature", [0.01, 1.0, 100.0, pytest.param(0.1, marks=pytest.mark.slow)])
def test_certificate_bounds_every_item_from_its_own_float32_score(rng: np.random.Generator, temperature: float) -> None:
    """An item's float32 score, as FAISS computes it, bounds its true value (mpmath) from below: the certificate
    is sound, for near-duplicates, one-hot-like and spread-out outputs."""
    queries = rng.standard_normal((60, 50)) * rng.choice([0.1, 3.0, 30.0], size=(60, 1))
    items = (queries + rng.standard_normal((60, 50)) * rng.choice([1e-6, 0.1, 3.0], size=(60, 1))).astype(np.float32)
    truth = [precise_divergences(x, z.astype(np.float64), temperature) for x, z in zip(queries, items, strict=True)]
    for metric in ("ce", "kl", "kl_reverse"):
        embedding = EMBEDDINGS[metric]
        scores = np.einsum(
            "qc,qc->q", embedding.transform_queries(queries, temperature), embedding.transform_items(items, temperature)
        )
        bound = candidate_lower_bound(metric, scores, queries, temperature)
        for i, true in enumerate(truth):
            assert bound[i] <= true[metric], f"{metric} row {i}: bound {bound[i]!r} above {true[metric]}"


def test_derived_index_follows_writes(rng: np.random.Generator) -> None:
    vectors = (rng.standard_normal((100, 10)) * 4).astype(np.float32)
    index, ids = _index(vectors)
    query = vectors[:1]
    assert index.search(query, 1, metric="kl").neighbors[0][0].id == "i0"
    index.delete("i0")
    assert index.search(query, 1, metric="kl").neighbors[0][0].id != "i0"
    index.upsert(["back"], query, [{}])
    assert index.search(query, 1, metric="kl").neighbors[0][0].id == "back"


@pytest.mark.parametrize("metric", ["js", "tri"])
def test_near_uniform_softmax_is_certified_without_the_exact_scan(
    metric: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Near-uniform softmax (small logits, T = 10): the plain Hellinger bound (ln 2 / 2) s separates little, and
    # the candidate set grew until every row was compared exactly; with the log-ratios bounded (the centred √q
    # space, `hellinger_factors`) the bound is nearly js itself, and a few candidates settle it.
    vectors = (rng.standard_normal((600, 10)) * 0.1).astype(np.float32)
    queries = (rng.standard_normal((6, 10)) * 0.1).astype(np.float32)
    index, ids = _index(vectors)
    scans: list[int] = []
    original = rerank._scan
    monkeypatch.setattr(
        rerank, "_scan", lambda source, q, pending, *a: scans.append(len(pending)) or original(source, q, pending, *a)
    )
    result = index.search(queries, 60, metric=metric, temperature=10.0)
    assert not scans, "the exact scan of every row was not needed"
    assert_matches_brute_force(result, brute_force(metric, queries, vectors, 10.0), ids, 60, tol=1e-6)


@pytest.mark.parametrize("metric", ["l2", "l2_centered", "cosine"])
def test_geometric_certificate_bounds_every_item_from_its_own_float32_score(metric: str) -> None:
    """Every item's float32 score, from the scan's expansion and from FAISS, bounds its true distance (numpy
    float64 from exact differences) from below, at norms from 1 to 1e4 and distances from 1e-6 to 1e3."""
    rng = np.random.default_rng(7)
    num_classes = 50
    queries = rng.standard_normal((6, num_classes)) * rng.choice([1.0, 1e2, 1e3], size=(6, 1))
    offsets = rng.standard_normal((6, 80, num_classes)) * rng.choice([1e-6, 1e-3, 1.0, 1e2], size=(6, 80, 1))
    num_far = 0
    for query, offset in zip(queries, offsets, strict=True):
        items = (query + offset).astype(np.float32)
        x, z = query[None, :], items.astype(np.float64)
        if metric == "l2_centered":
            x, z = x - x.mean(), z - z.mean(axis=1, keepdims=True)
        if metric == "cosine":
            unit_x, unit_z = x / np.linalg.norm(x), z / np.linalg.norm(z, axis=1, keepdims=True)
            truth = 0.5 * np.sum((unit_x - unit_z) ** 2, axis=1)
        else:
            truth = np.linalg.norm(x - z, axis=1)
        if metric == "l2":
            matrix, kind, vectors = items, "l2", query[None, :].astype(np.float32)
        else:
            embedding = EMBEDDINGS[metric]
            matrix, vectors = embedding.transform_items(items, 1.0), embedding.transform_queries(query[None, :], 1.0)
            kind = embedding.kind
        norms = np.einsum("nc,nc->n", matrix, matrix, dtype=np.float32)
        scores, positions = scan_candidates(matrix, norms, vectors, len(items), kind, None)  # type: ignore[arg-type]
        faiss_scores = (
            np.sum((matrix - vectors) ** 2, axis=1, dtype=np.float32) if kind == "l2" else matrix @ vectors[0]
        )
        for score, rows in ((scores[0], positions[0]), (faiss_scores, np.arange(len(items)))):
            bound = candidate_lower_bound(metric, score, query[None, :].repeat(len(score), 0), 1.0)
            assert np.all(bound <= truth[rows]), (metric, np.max(bound - truth[rows]))
        far = truth[rows] > (1e-3 if metric == "cosine" else 0.1 * np.linalg.norm(query))
        assert np.all(bound[far] > 0.5 * truth[rows][far])  # not vacuous where distances are large
        num_far += int(far.sum())
    assert num_far > 50


@pytest.mark.parametrize("delta", [1e-7, 1e-4, 1e-2, 0.3, 2.0, 30.0])
def test_hellinger_factors_against_the_oracle(rng: np.random.Generator, delta: float) -> None:
    """`js ≥ f s` and `tri ≥ f s` (`hellinger_factors`) for pairs whose log-ratios stay within Δ, in 340-digit
    arithmetic: random pairs, and two classes at exactly ±Δ (where the factors are nearly tight)."""
    js_factor, tri_factor = (float(f[0]) for f in hellinger_factors(np.array([delta])))
    assert np.log(2) / 2 <= js_factor <= 0.5 and 1.0 <= tri_factor <= 2.0
    pairs = []
    for c in (2, 10, 1000):
        p = rng.dirichlet(np.full(c, 1.0))
        shift = rng.uniform(-delta / 2, delta / 2, c)
        pairs.append((p, p * np.exp(shift) / np.sum(p * np.exp(shift))))  # |log p − log q| ≤ Δ/2 + Δ/2
    edge = np.exp(delta)  # log p − log q = ±Δ in both classes
    pairs.append((np.array([edge, 1.0]) / (1 + edge), np.array([1.0, edge]) / (1 + edge)))
    worst = []
    for p, q in pairs:
        assert np.abs(np.log(p) - np.log(q)).max() <= delta * (1 + 1e-9)
        mp, mq = [mpmath.mpf(float(v)) for v in p], [mpmath.mpf(float(v)) for v in q]
        js, s = _js_and_hellinger(mp, mq)
        tri = mpmath.fsum((a - b) ** 2 / (a + b) for a, b in zip(mp, mq, strict=True))
        if s == 0:
            continue
        assert js >= js_factor * s and tri >= tri_factor * s, (delta, len(p))
        worst.append(float(js / s) / js_factor)
    assert min(worst) < 1.01  # the two-class pair at ±Δ is within 1 % of the factor
