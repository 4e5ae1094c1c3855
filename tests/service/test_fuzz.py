"""API fuzzing: schemathesis generates requests from the OpenAPI schema; no 5xx, responses match the schema."""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.app import create_app
from service.config import Settings

# (path, method) of every operation, read from the schema of an app that was never started.
OPERATIONS = [
    (path, method)
    for path, methods in create_app(Settings()).openapi()["paths"].items()
    for method in methods
    if path != "/metrics"  # plain text, not JSON
]


@contextmanager
def _loaded_app(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path, **limits: int) -> Iterator[FastAPI]:
    """The app with its lifespan run (model and index loaded) on a private copy of the default data."""
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(default_data_dir, data_dir)
    settings = Settings(
        data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2, max_image_pixels=1_000_000, **limits
    )
    app = create_app(settings)
    with TestClient(app):
        yield app


@pytest.fixture(scope="module")
def loaded_app(tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path) -> Iterator[FastAPI]:
    # Small limits keep each generated request cheap; evaluations past 20 queries are refused (422), not run.
    with _loaded_app(tmp_path_factory, default_data_dir, max_batch=16, max_k=100, max_eval_queries=20) as app:
        yield app


def _fuzz(app: FastAPI, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        response = case.call(timeout=120)  # a loaded 2-core machine can take seconds for one evaluation
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:500]}"
        case.validate_response(response, checks=[response_schema_conformance])

    fuzz()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_never_fails_and_matches_its_schema(loaded_app: FastAPI, path: str, method: str) -> None:
    _fuzz(loaded_app, path, method)


@pytest.mark.slow
def test_evaluate_never_fails_at_the_default_evaluation_limits(
    tmp_path_factory: pytest.TempPathFactory, default_data_dir: Path
) -> None:
    """The evaluation fuzzed up to 500 queries (about a minute on 2 cores; the default run stops at 20)."""
    with _loaded_app(tmp_path_factory, default_data_dir, max_batch=16, max_k=100) as app:
        _fuzz(app, "/v1/evaluate", "post")
