"""Nearest-neighbour search by logits, image or stored id."""

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from evaluation.agreement import check_agreement
from indexes.store import SearchResult

from ..deps import ClassifierDep, IndexDep, MetricsDep, SettingsDep
from ..inputs import check_batch, check_k, check_results, decode_one, resolve_vectors
from ..routing import OffLoopRoute
from ..schemas import (
    AgreementRequest,
    AgreementResponse,
    ErrorResponse,
    Neighbor,
    SearchRequest,
    SearchResponse,
    Temperature,
)

router = APIRouter(route_class=OffLoopRoute, prefix="/search", tags=["search"])


def _to_response(result: SearchResult, metric: str, temperature: float) -> SearchResponse:
    rows = [[Neighbor(id=n.id, distance=n.distance, metadata=n.metadata) for n in row] for row in result.neighbors]
    return SearchResponse(metric=metric, temperature=temperature, results=rows)


@router.post("", responses={404: {"model": ErrorResponse, "description": "A query names an unknown id"}})
def search_neighbors(
    body: SearchRequest, classifier: ClassifierDep, index: IndexDep, settings: SettingsDep, metrics: MetricsDep
) -> SearchResponse:
    """The k nearest stored items of each query, closest first."""
    check_batch(len(body.queries), settings, "queries")
    check_k(body.k, settings)
    check_results(body.k, len(body.queries), settings)
    queries = resolve_vectors(body.queries, classifier, index, settings, where="queries")
    result = index.search(queries, body.k, metric=body.metric, temperature=body.temperature, filter=body.filter)
    metrics.queries.labels(index.name, body.metric).inc(len(body.queries))
    return _to_response(result, body.metric, body.temperature)


@router.post("/image")
def search_image(
    file: Annotated[UploadFile, File(description="The query image", json_schema_extra={"minLength": 1})],
    classifier: ClassifierDep,
    index: IndexDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: Annotated[int, Form(ge=1)] = 10,
    metric: Annotated[str, Form()] = "l2",
    temperature: Annotated[Temperature, Form()] = 1.0,
) -> SearchResponse:
    """Shortcut: the k nearest stored items of one uploaded image."""
    check_k(k, settings)
    image = decode_one(file.file.read(settings.max_image_bytes + 1), settings, "file")
    result = index.search(classifier.logits_from_images([image]), k, metric=metric, temperature=temperature)
    metrics.queries.labels(index.name, metric).inc()
    return _to_response(result, metric, temperature)


@router.post("/agreement", responses={404: {"model": ErrorResponse, "description": "The query names an unknown id"}})
def check_search_agreement(
    body: AgreementRequest, classifier: ClassifierDep, index: IndexDep, settings: SettingsDep
) -> AgreementResponse:
    """Does the metric follow CE here: its top-k against the exact reference top-k for one query."""
    check_k(body.k, settings)
    query = resolve_vectors([body.query], classifier, index, settings, where="query")[0]
    found = check_agreement(index, query, body.k, body.metric, body.reference, body.temperature, body.filter)
    return AgreementResponse.model_validate(found, from_attributes=True)
