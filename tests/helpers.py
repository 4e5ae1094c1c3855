"""Test oracles shared by the test packages."""

import numpy as np

from indexes.store import SearchResult


def brute_force_l2(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """`(q, n)` true Euclidean distances in float64, the slow obvious way."""
    diff = queries[:, None, :].astype(np.float64) - items[None, :, :].astype(np.float64)
    return np.sqrt((diff**2).sum(-1))


def assert_matches_brute_force(
    result: SearchResult, distances: np.ndarray, ids: list[str], k: int, tol: float = 1e-4
) -> None:
    """Each result row is an exact top-k of `distances` (q, n), ties aside (faiss contrib's check with draws).

    The returned distances must equal the oracle's for the returned ids, be sorted, and the k-th distance must
    equal the oracle's k-th smallest; ids may differ only among items tied at the boundary.
    """
    position = {item_id: i for i, item_id in enumerate(ids)}
    for row, hits in zip(distances, result.neighbors, strict=True):
        expected = np.sort(row)[: min(k, len(row))]
        got = np.array([h.distance for h in hits])
        assert len(hits) == len(expected)
        assert len({h.id for h in hits}) == len(hits)
        np.testing.assert_allclose(got, expected, atol=tol, rtol=tol)
        np.testing.assert_allclose(got, [row[position[h.id]] for h in hits], atol=tol, rtol=tol)
        assert np.all(np.diff(got) >= -tol)
