"""API fuzzing: schemathesis generates requests from the OpenAPI schema; no 5xx, responses match the schema."""

from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def loaded_app(tmp_path_factory: pytest.TempPathFactory, default_data_dir: object) -> Iterator[FastAPI]:
    """The app with its lifespan run (model and index loaded) on a private copy of the default data."""
    import shutil

    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    shutil.copytree(str(default_data_dir), data_dir)
    app = create_app(
        Settings(
            data_dir=data_dir,
            device="cpu",
            faiss_gpu="false",
            num_threads=2,
            max_batch=16,
            max_k=100,
            max_image_pixels=1_000_000,
        )
    )
    with TestClient(app):
        yield app


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_api_never_fails_and_matches_its_schema(loaded_app: FastAPI, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_asgi("/openapi.json", loaded_app)[path][method]

    @given(data=st.data())
    @settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def fuzz(data: st.DataObject) -> None:
        case = data.draw(operation.as_strategy())
        response = case.call(timeout=120)  # a loaded 2-core machine can take seconds for one evaluation
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text[:500]}"
        case.validate_response(response, checks=[response_schema_conformance])

    fuzz()
