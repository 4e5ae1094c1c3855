"""The OpenAPI schema is as strict as the validation: what the schema allows, the API does not refuse as malformed."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings
from tests.helpers import openapi_schema, valid_against_openapi

OPENAPI = openapi_schema()


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("SearchRequest", {"queries": [{}]}),
        ("SearchRequest", {"queries": [{"id": "a", "logits": [1.0]}]}),
        ("SearchRequest", {"queries": [{"id": ""}]}),
        ("SearchRequest", {"queries": [{"logits": []}]}),
        ("SearchRequest", {"queries": [{"id": "a"}], "metric": "manhattan"}),
        ("UpsertRequest", {"items": [{"id": ""}]}),
        ("UpsertRequest", {"items": [{"id": "x"}]}),
        ("UpsertRequest", {"items": [{"id": "x", "logits": [1.0], "image": "aGk="}]}),
        ("UpsertRequest", {"items": [{"id": "x" * 257, "logits": [1.0]}]}),
        ("DivergenceRequest", {"a": [], "b": []}),
        ("DivergenceRequest", {"a": [[]], "b": [1.0]}),
        ("DivergenceRequest", {"a": [1.0], "b": [1.0], "measures": ["hamming"]}),
        ("EvaluateRequest", {"metrics": [""]}),
        ("IndexCreateRequest", {"name": "Photos", "model": "digits-cnn"}),
        ("IndexCreateRequest", {"name": "-photos", "model": "digits-cnn"}),
        ("ListRequest", {"order": "size:desc"}),
        ("ListRequest", {"order": "confidence:up"}),
        ("UpsertRequest", {"items": [{"id": "tab\there", "logits": [1.0]}]}),
        ("UpsertRequest", {"items": [{"id": "c1\u0085", "logits": [1.0]}]}),
    ],
)
def test_bodies_the_api_refuses_are_outside_the_schema(schema: str, body: Any) -> None:
    assert not valid_against_openapi(schema, body)


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("SearchRequest", {"queries": [{"id": "digits-1"}, {"logits": [1.0, 2.0]}, {"image": "aGk="}], "metric": "js"}),
        ("UpsertRequest", {"items": [{"id": "x", "logits": [1.0]}, {"id": "y", "image": "aGk=", "metadata": {}}]}),
        ("DivergenceRequest", {"a": [[1.0, 2.0]], "b": [1.0, 2.0], "measures": ["ce", "cosine"]}),
        ("EvaluateRequest", {"metrics": ["l2", "kl"]}),
        ("IndexCreateRequest", {"name": "photos_2-b", "model": "digits-cnn"}),
        ("ListRequest", {"order": "entropy:desc"}),
        ("ListRequest", {"order": ""}),
        ("UpsertRequest", {"items": [{"id": "photo 1 é 猫", "logits": [1.0]}]}),
    ],
)
def test_bodies_the_api_takes_are_inside_the_schema(schema: str, body: Any) -> None:
    assert valid_against_openapi(schema, body)


def test_parse_errors_and_upload_sizes_are_documented() -> None:
    for path, methods in OPENAPI["paths"].items():
        for method, operation in methods.items():
            if "requestBody" in operation:
                assert {"400", "415", "422"} <= operation["responses"].keys(), (method, path)
    upload = OPENAPI["paths"]["/v1/search/image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    schema = OPENAPI["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[1]]
    assert schema["properties"]["file"]["minLength"] == 1
    assert "507" in OPENAPI["paths"]["/v1/items"]["post"]["responses"]


def test_operation_ids_are_readable_and_unique() -> None:
    operations = [op for path in OPENAPI["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert "search-search_neighbors" in ids and "search-search_neighbors-in_index" in ids
    assert "embed-embed_images-with_model" in ids and all("_post" not in i and "_get" not in i for i in ids)


def test_a_405_allows_every_method_the_schema_gives_its_path(client: TestClient) -> None:
    def pattern(path: str) -> re.Pattern[str]:  # an item id may hold slashes (`{item_id:path}`)
        return re.compile(re.sub(r"\{\w+\}", "[^/]+", path.replace("{item_id}", ".+")) + "$")

    templates = {pattern(path): operations for path, operations in OPENAPI["paths"].items()}
    for path, operations in OPENAPI["paths"].items():
        if "patch" in operations:
            continue
        url = re.sub(r"\{\w+\}", "x", path)
        answer = client.request("PATCH", url)
        assert answer.status_code == 405, (path, answer.status_code)
        # `/v1/items/list` is also `/v1/items/{item_id}`: every template the URL fits serves it
        served = {method.upper() for template, ops in templates.items() if template.match(url) for method in ops}
        allowed = {method.strip() for method in answer.headers["allow"].split(",")}
        assert served <= allowed <= served | {"HEAD"}, (path, allowed)


def test_the_schema_states_this_services_limits(settings: Settings) -> None:
    """k and batch sizes are configured per service: its schema says its own, and they are where it refuses."""
    limited = settings.model_copy(update={"max_k": 7, "max_batch": 3})
    with TestClient(create_app(limited)) as client:
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
        assert schemas["SearchRequest"]["properties"]["k"]["maximum"] == 7
        assert schemas["SearchRequest"]["properties"]["queries"]["anyOf"][0]["maxItems"] == 3
        assert schemas["UpsertRequest"]["properties"]["items"]["anyOf"][0]["maxItems"] == 3
        query = {"id": "digits-1"}
        assert client.post("/v1/search", json={"queries": [query] * 3, "k": 7}).status_code == 200
        assert client.post("/v1/search", json={"queries": [query] * 3, "k": 8}).status_code == 422
        assert client.post("/v1/search", json={"queries": [query] * 4, "k": 7}).status_code == 422
