"""Test oracles shared by the test packages."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from indexes.store import SearchResult

# The keys of report.json's "ranking" rows that other tools rely on (issue contract).
RANKING_KEYS = {
    "metric",
    "temperature",
    "k",
    "spearman_mean",
    "spearman_std",
    "kendall_mean",
    "overlap_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "label_precision_at_k",
}


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


def brute_force(metric: str, queries: np.ndarray, items: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """`(q, n)` values of a search metric, computed independently of `indexes` with scipy, in float64."""
    from scipy.spatial.distance import cdist
    from scipy.special import log_softmax

    x, z = queries.astype(np.float64), items.astype(np.float64)
    if metric == "l2":
        return cdist(x, z)
    if metric == "l2_centered":
        return cdist(x - x.mean(1, keepdims=True), z - z.mean(1, keepdims=True))
    if metric == "cosine":
        return cdist(x, z, "cosine")
    log_p, log_q = log_softmax(x / temperature, axis=1), log_softmax(z / temperature, axis=1)
    p, q = np.exp(log_p), np.exp(log_q)
    if metric == "ce":
        return -(p[:, None, :] * log_q[None, :, :]).sum(-1)
    # Log-domain sums: at T = 0.01 a probability can underflow to 0 while its log stays finite.
    if metric == "kl":
        return _xlog_diff(p[:, None, :], log_p[:, None, :], log_q[None, :, :])
    if metric == "kl_reverse":
        return _xlog_diff(q[None, :, :], log_q[None, :, :], log_p[:, None, :])
    if metric == "js":
        log_m = np.logaddexp(log_p[:, None, :], log_q[None, :, :]) - np.log(2)
        return 0.5 * _xlog_diff(p[:, None, :], log_p[:, None, :], log_m) + 0.5 * _xlog_diff(
            q[None, :, :], log_q[None, :, :], log_m
        )
    if metric == "tri":
        total = p[:, None, :] + q[None, :, :]
        diff2 = (p[:, None, :] - q[None, :, :]) ** 2
        return np.divide(diff2, total, out=np.zeros_like(diff2), where=total > 0).sum(-1)
    raise ValueError(metric)


def _xlog_diff(p: np.ndarray, log_p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """`Σ p (log p − log q)` over the last axis, terms with p = 0 counting 0."""
    return np.where(p > 0, p * (log_p - log_q), 0.0).sum(-1)


def class_logits(rng: np.random.Generator, n: int, num_classes: int, spread: float = 1.5) -> np.ndarray:
    """`(n, C)` float32 logits shaped like a trained classifier's: each row near its class's prototype (one large
    logit, a random pattern of confusions), with Gaussian noise of std `spread`."""
    prototypes = rng.normal(0.0, 2.0, (num_classes, num_classes))
    prototypes[np.arange(num_classes), np.arange(num_classes)] += 8.0
    classes = rng.integers(0, num_classes, n)
    return (prototypes[classes] + rng.normal(0.0, spread, (n, num_classes))).astype(np.float32)


ROOT = Path(__file__).resolve().parents[1]


def modules_after(code: str) -> list[str]:
    """`sys.modules` after running `code` in a fresh Python with this tree first on its path, in import order."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(list(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    modules: list[str] = json.loads(done.stdout.splitlines()[-1])
    return modules
