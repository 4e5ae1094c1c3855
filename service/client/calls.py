"""Each API operation as a `Call`: the request to send and how to read its answer, shared by both clients."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
from pydantic import BaseModel

from ..evaluation_schemas import EvaluateResponse
from ..schemas import (
    AgreementResponse,
    AnalysisResponse,
    CountResponse,
    DeletedCount,
    DeleteResponse,
    DivergenceResponse,
    DropResponse,
    EmbedResponse,
    IndexDescription,
    IndexList,
    InfoResponse,
    ItemOut,
    ItemsPage,
    ModelDescription,
    ModelList,
    SearchResponse,
    UpsertResponse,
    encode_vectors,
)
from .encoding import (
    ImageLike,
    LogitsLike,
    drop_none,
    image_base64,
    image_bytes,
    image_files,
    logits_matrix,
    logits_rows,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: The routes each client method calls; `{index}` stands for `/v1` (the default index) or `/v1/indexes/{name}`.
#: The contract test checks that every operation of the service's OpenAPI schema is here.
ROUTES: dict[str, tuple[str, ...]] = {
    "health": ("GET /health",),
    "ready": ("GET /ready",),
    "metrics": ("GET /metrics",),
    "info": ("GET /v1/info",),
    "list_models": ("GET /v1/models",),
    "embed": ("POST /v1/embed", "POST /v1/models/{model_name}/embed"),
    "list_indexes": ("GET /v1/indexes",),
    "get_index": ("GET /v1/indexes/{index_name}",),
    "create_index": ("POST /v1/indexes",),
    "drop_index": ("DELETE /v1/indexes/{index_name}",),
    "replace_shard": ("PUT /v1/indexes/{index_name}/shards/{shard}",),
    "upsert": ("POST {index}/items",),
    "list_items": ("GET {index}/items", "POST {index}/items/list"),
    "count": ("POST {index}/count",),
    "delete_items": ("POST {index}/items/delete",),
    "get_item": ("GET {index}/items/{item_id}",),
    "delete_item": ("DELETE {index}/items/{item_id}",),
    "thumbnail": ("GET {index}/items/{item_id}/thumbnail",),
    "search": ("POST {index}/search",),
    "search_image": ("POST {index}/search/image",),
    "agreement": ("POST {index}/search/agreement",),
    "evaluate": ("POST {index}/evaluate",),
    "analyse": ("POST {index}/analyses/{kind}",),
    "divergence": ("POST /v1/divergence",),
}


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reader of its successful answer.

    `idempotent` calls (reads, and upserts, which replace by id) are retried on 503 and connection errors.
    """

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    files: Sequence[tuple[str, tuple[str, bytes, str]]] | None = None
    data: Mapping[str, Any] | None = None
    idempotent: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Thumbnail:
    """An item's small image: the encoded bytes and their media type (`image/png` or `image/webp`)."""

    data: bytes
    media_type: str


def _model(cls: type[M]) -> Callable[[httpx.Response], M]:
    return lambda response: cls.model_validate_json(response.content)


def _json(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def _index(index: str | None) -> str:
    return "/v1" if index is None else f"/v1/indexes/{quote(index, safe='')}"


def _item(index: str | None, item_id: str) -> str:
    return f"{_index(index)}/items/{quote(item_id, safe='/')}"


# -- service ---------------------------------------------------------------------------------------------------


def health() -> Call[dict[str, Any]]:
    return Call("GET", "/health", _json)


def ready() -> Call[bool]:
    return Call("GET", "/ready", lambda response: True)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda response: response.text)


def info() -> Call[InfoResponse]:
    return Call("GET", "/v1/info", _model(InfoResponse))


def list_models() -> Call[list[ModelDescription]]:
    return Call("GET", "/v1/models", lambda r: ModelList.model_validate_json(r.content).models)


def embed(images: Sequence[ImageLike], temperature: float, model: str | None) -> Call[EmbedResponse]:
    path = "/v1/embed" if model is None else f"/v1/models/{quote(model, safe='')}/embed"
    return Call(
        "POST", path, _model(EmbedResponse), files=image_files("files", images), data={"temperature": temperature}
    )


# -- indexes ---------------------------------------------------------------------------------------------------


def list_indexes() -> Call[list[IndexDescription]]:
    return Call("GET", "/v1/indexes", lambda r: IndexList.model_validate_json(r.content).indexes)


def get_index(name: str) -> Call[IndexDescription]:
    return Call("GET", _index(name), _model(IndexDescription))


def create_index(options: dict[str, Any]) -> Call[IndexDescription]:
    """POST /v1/indexes with `options` (None values left out; sequences such as `temperatures` sent as lists)."""
    body = {key: list(value) if isinstance(value, tuple | list) else value for key, value in options.items()}
    return Call("POST", "/v1/indexes", _model(IndexDescription), json=drop_none(body), idempotent=False)


def replace_shard(name: str, shard: int, url: str | None, promote: bool | None) -> Call[IndexDescription]:
    body = drop_none({"url": url, "promote": promote})
    return Call("PUT", f"{_index(name)}/shards/{shard}", _model(IndexDescription), json=body, idempotent=True)


def drop_index(name: str) -> Call[DropResponse]:
    return Call("DELETE", _index(name), _model(DropResponse), idempotent=False)


# -- items -----------------------------------------------------------------------------------------------------


def upsert(items: list[dict[str, Any]], index: str | None) -> Call[UpsertResponse]:
    """One batch of `item_dicts` items; a batch is stored whole or not at all.

    Items given by logits go as columns (ids, one base64 float32 matrix, metadata): the bulk form, which the
    server reads without an object per item. Images go as one object each.
    """
    if items and "logits" in items[0]:
        matrix = np.stack([item["logits"] for item in items])
        body: dict[str, Any] = {
            "ids": [item["id"] for item in items],
            "logits_b64": encode_vectors(matrix),
            "shape": list(matrix.shape),
            "metadata": [item["metadata"] for item in items],
        }
    else:
        body = {"items": items}
    return Call("POST", f"{_index(index)}/items", _model(UpsertResponse), json=body)


def item_dicts(
    ids: Sequence[str],
    logits: LogitsLike | None,
    images: Sequence[ImageLike] | None,
    metadata: Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """`upsert`'s columns as one dict per item (`{"id", "logits" | "image", "metadata"}`, logits as a numpy
    row, sent as float32, which the index stores), checked to be of one length."""
    if (logits is None) == (images is None):
        raise ValueError("give exactly one of logits (an (n, C) array) or images (n images)")
    sources: list[tuple[str, Any]] = (
        [("logits", row) for row in logits_matrix(logits)] if logits is not None else
        [("image", image_base64(image)) for image in images or ()]
    )  # fmt: skip
    metas = list(metadata) if metadata is not None else [{}] * len(ids)
    if not len(ids) == len(sources) == len(metas):
        raise ValueError(f"{len(ids)} ids, {len(sources)} vectors or images and {len(metas)} metadata: give one each")
    return [
        {"id": item_id, key: value, "metadata": dict(meta)}
        for item_id, (key, value), meta in zip(ids, sources, metas, strict=True)
    ]


def list_items(offset: int, limit: int, index: str | None, listing: Mapping[str, Any] | None = None) -> Call[ItemsPage]:
    """A page by offset (GET), or of a listing with a filter, an order or a cursor (POST: the filter as JSON)."""
    if listing:
        body = {"limit": limit, **drop_none(dict(listing))}
        return Call("POST", f"{_index(index)}/items/list", _model(ItemsPage), json=body)
    return Call("GET", f"{_index(index)}/items", _model(ItemsPage), params={"offset": offset, "limit": limit})


def count(index: str | None, **options: Any) -> Call[CountResponse]:
    return Call("POST", f"{_index(index)}/count", _model(CountResponse), json=drop_none(options))


def delete_items(index: str | None, **options: Any) -> Call[DeletedCount]:
    return Call(
        "POST", f"{_index(index)}/items/delete", _model(DeletedCount), json=drop_none(options), idempotent=False
    )


def get_item(item_id: str, index: str | None) -> Call[ItemOut]:
    return Call("GET", _item(index, item_id), _model(ItemOut))


def delete_item(item_id: str, index: str | None) -> Call[DeleteResponse]:
    return Call("DELETE", _item(index, item_id), _model(DeleteResponse), idempotent=False)


def thumbnail(item_id: str, index: str | None) -> Call[Thumbnail]:
    return Call(
        "GET",
        f"{_item(index, item_id)}/thumbnail",
        lambda r: Thumbnail(r.content, r.headers.get("content-type", "application/octet-stream")),
    )


# -- search ----------------------------------------------------------------------------------------------------


def queries(
    logits: LogitsLike | None, ids: Sequence[str] | None, images: Sequence[ImageLike] | None
) -> list[dict[str, Any]]:
    """The JSON queries of exactly one of: logits `(C,)` or `(n, C)`, stored ids, images."""
    given = [name for name, value in (("logits", logits), ("ids", ids), ("images", images)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of logits, ids or images; got {', '.join(given) or 'none'}")
    if logits is not None:
        return [{"logits": row} for row in logits_rows(logits)]
    if ids is not None:
        if isinstance(ids, str):
            raise ValueError("ids is a list of ids: write ids=[...]")
        return [{"id": item_id} for item_id in ids]
    return [{"image": image_base64(image)} for image in images or ()]


def search(body: dict[str, Any], index: str | None) -> Call[SearchResponse]:
    return Call("POST", f"{_index(index)}/search", _model(SearchResponse), json=drop_none(body))


def search_image(image: ImageLike, form: dict[str, Any], index: str | None) -> Call[SearchResponse]:
    return Call(
        "POST",
        f"{_index(index)}/search/image",
        _model(SearchResponse),
        files=[("file", image_bytes(image))],
        data=drop_none(form),
    )


def agreement(body: dict[str, Any], index: str | None) -> Call[AgreementResponse]:
    return Call("POST", f"{_index(index)}/search/agreement", _model(AgreementResponse), json=drop_none(body))


def divergence_body(
    a: LogitsLike,
    b: LogitsLike,
    input: str,
    temperature: float,
    base: str,
    pairwise: bool,
    measures: Sequence[str] | None,
) -> dict[str, Any]:
    return {
        "a": logits_rows(a, "a"),
        "b": logits_rows(b, "b"),
        "input": input,
        "temperature": temperature,
        "base": base,
        "pairwise": pairwise,
        "measures": list(measures) if measures is not None else None,
    }


def divergence(body: dict[str, Any]) -> Call[DivergenceResponse]:
    return Call("POST", "/v1/divergence", _model(DivergenceResponse), json=drop_none(body))


def evaluate_body(options: Mapping[str, Any]) -> dict[str, Any]:
    """`POST /v1/evaluate`'s body; query `logits` may be a numpy array."""
    body = dict(options)
    if body.get("logits") is not None:
        body["logits"] = logits_rows(body["logits"])
    return body


def analyse(kind: str, index: str | None, options: Mapping[str, Any]) -> Call[AnalysisResponse]:
    """POST .../analyses/{kind}; an analysis reads and writes nothing but its answer, so it may be retried."""
    body = {key: list(value) if isinstance(value, tuple) else value for key, value in options.items()}
    return Call(
        "POST", f"{_index(index)}/analyses/{quote(kind, safe='')}", _model(AnalysisResponse), json=drop_none(body)
    )


def evaluate(body: dict[str, Any], index: str | None) -> Call[EvaluateResponse]:
    return Call("POST", f"{_index(index)}/evaluate", _model(EvaluateResponse), json=drop_none(body))
