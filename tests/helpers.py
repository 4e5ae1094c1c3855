"""Test oracles and helpers shared by the test packages (a test module never imports another test module)."""

import base64
import functools
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mpmath
import numpy as np
import pytest
from PIL import Image

from indexes.durable import DurableIndex
from indexes.store import SearchResult, VectorStore

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from models import Classifier

# Cancellation inside the precise oracle itself can take 200 digits at T = 0.01.
mpmath.mp.dps = 340

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


# --- Arbitrary-precision oracle (mpmath) of the divergences -----------------------------------------------------


def precise_softmax(row: np.ndarray, t: float) -> list[mpmath.mpf]:
    """softmax(row / t) in 340-digit arithmetic from the float64 inputs as given."""
    z = [mpmath.mpf(float(v)) for v in row]
    top = max(z)
    # Differences of float64 inputs are exact at this precision, so equal gaps stay exactly equal.
    e = [mpmath.exp((v - top) / mpmath.mpf(t)) for v in z]
    total = mpmath.fsum(e)
    return [v / total for v in e]


def _normalised(row: np.ndarray) -> list[mpmath.mpf]:
    values = [mpmath.mpf(float(v)) for v in row]
    total = mpmath.fsum(values)
    return [v / total for v in values]


def _kl(p: list[mpmath.mpf], q: list[mpmath.mpf]) -> mpmath.mpf:
    return mpmath.fsum(a * mpmath.log(a / b) for a, b in zip(p, q, strict=True) if a > 0)


def precise_divergences(x: np.ndarray, y: np.ndarray, t: float, kind: str = "logits") -> dict[str, mpmath.mpf]:
    """Every measure between two rows, in 340-digit arithmetic from the float64 inputs as given."""
    p, q = (precise_softmax(x, t), precise_softmax(y, t)) if kind == "logits" else (_normalised(x), _normalised(y))
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    return {
        "ce": -mpmath.fsum(a * mpmath.log(b) for a, b in zip(p, q, strict=True) if a > 0),
        "kl": _kl(p, q),
        "kl_reverse": _kl(q, p),
        "js": (_kl(p, m) + _kl(q, m)) / 2,
        "tri": mpmath.fsum((a - b) ** 2 / (a + b) for a, b in zip(p, q, strict=True) if a + b > 0),
    }


# --- A small DurableIndex ------------------------------------------------------------------------------------------

DURABLE_DIM = 6


def open_durable(path: Path, **overrides: object) -> DurableIndex:
    """A `DurableIndex` of dimension `DURABLE_DIM` at `path`; `overrides` replace the open options."""
    options: dict[str, object] = {"name": "t", "model_name": "m", "model_sha256": "ab" * 32, "dim": DURABLE_DIM}
    options.update(overrides)
    return DurableIndex.open(path, **options)  # type: ignore[arg-type]


def store_of_kind(
    request: pytest.FixtureRequest, kind: str, path: Path, dim: int, temperatures: tuple[float, ...] = (1.0,)
) -> VectorStore:
    """An empty store for a parametrized fixture: the FAISS store at `path` (`kind` "faiss") or a fresh pgvector
    index (`kind` "pgvector", on the session's `pg_database`), closed or dropped when the test ends."""
    if kind == "faiss":
        durable = open_durable(path, dim=dim)
        request.addfinalizer(durable.close)
        return durable
    import uuid

    from indexes.pg import PgIndexSpec, PgVectorStore

    spec = PgIndexSpec(f"t-{uuid.uuid4().hex[:12]}", "m", "ab" * 32, dim, temperatures)
    created = PgVectorStore.create(request.getfixturevalue("pg_database"), spec)
    request.addfinalizer(created.drop)
    return created


def durable_vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, DURABLE_DIM)).astype(np.float32)


def durable_contents(index: DurableIndex) -> dict[str, tuple[list[float], dict[str, object]]]:
    return {item.id: (item.logits.tolist(), item.metadata) for item in index.iter_items()}


# --- Images and the REST API ---------------------------------------------------------------------------------------

UPLOAD_LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def digit_png(i: int) -> bytes:
    """The i-th image of the digits data set as PNG bytes."""
    from models import array_to_image, load_digit_images

    buffer = io.BytesIO()
    array_to_image(load_digit_images().images[i]).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def all_items(client: "TestClient") -> tuple[list[str], np.ndarray]:
    """Every item's id and logits, page by page."""
    page = client.get("/v1/items", params={"limit": 1000}).json()
    items = page["items"]
    offset = len(items)
    while offset < page["count"]:
        items += client.get("/v1/items", params={"offset": offset, "limit": 1000}).json()["items"]
        offset = len(items)
    return [item["id"] for item in items], np.array([item["logits"] for item in items], dtype=np.float32)


def write_images(folder: Path, rng: np.random.Generator, count: int) -> list[Path]:
    """PNG and JPEG files of various sizes and modes."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        height, width = rng.integers(6, 40, size=2)
        if i % 3 == 0:
            image = Image.fromarray(rng.integers(0, 256, size=(height, width), dtype=np.uint8))
        else:
            image = Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
        path = folder / f"{i:03d}.{'jpg' if i % 2 else 'png'}"
        image.save(path)
        paths.append(path)
    return paths


def upload_path_logits(classifier: "Classifier", paths: list[Path]) -> np.ndarray:
    """The oracle: each file alone through the service's upload path (decode_image, then the classifier)."""
    from models import decode_image

    return np.concatenate(
        [classifier.logits_from_images([decode_image(p.read_bytes(), **UPLOAD_LIMITS)]) for p in paths], axis=0
    )


@functools.cache
def openapi_schema() -> dict[str, Any]:
    """The service's OpenAPI document, from an app that was never started."""
    from service.app import create_app
    from service.config import Settings

    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def valid_against_openapi(schema_name: str, body: Any) -> bool:
    """Whether `body` validates against the OpenAPI component `schema_name` (JSON Schema 2020-12)."""
    import jsonschema_rs

    validator = jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": openapi_schema()["components"]}
    )
    return bool(validator.is_valid(body))


def _fashion_installed() -> bool:
    from models.fashion import FASHION_DIR

    return (FASHION_DIR / "t10k-labels-idx1-ubyte.gz").is_file()


fashion_installed = pytest.mark.skipif(
    not _fashion_installed(),
    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)",
)
