"""Nearest-neighbour search by logits (JSON or binary), image or stored id."""

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from starlette.responses import Response

from evaluation.agreement import check_agreement
from indexes.errors import InvalidInputError
from indexes.store import InlineSearch, SearchResult, VectorStore
from indexes.validation import check_vectors
from models import Classifier

from ..config import Settings
from ..http.deps import ClassifierDep, IndexDep, MetricsDep, SettingsDep
from ..http.inputs import check_batch, check_max_k, check_results, decode_one, decode_vectors, resolve_vectors
from ..http.listing import class_filter
from ..http.responses import search_response
from ..http.routing import OffLoopRoute
from ..schemas import AgreementRequest, AgreementResponse, ErrorResponse, SearchRequest, SearchResponse, Temperature

router = APIRouter(route_class=OffLoopRoute, prefix="/search", tags=["search"])


def _query_vectors(body: SearchRequest, classifier: Classifier, index: VectorStore, settings: Settings) -> np.ndarray:
    """`(n, C)` float64 query logits, from the queries or from the binary batch."""
    if body.queries is not None:
        return resolve_vectors(body.queries, classifier, index, settings, where="queries")
    decoded = decode_vectors(body.logits_b64 or "", body.batch_shape, "logits_b64")
    return check_vectors(decoded, index.dim, name="logits_b64", dtype=np.float64)


#: A search over at most this many stored values (items x classes x queries) runs on the event loop when the
#: store can answer at once: half a millisecond of scanning, less than a round trip through the thread pool.
INLINE_VALUES = 1_000_000


@router.post(
    "",
    response_model=SearchResponse,
    responses={404: {"model": ErrorResponse, "description": "A query names an unknown id"}},
)
async def search_neighbors(
    body: SearchRequest, classifier: ClassifierDep, index: IndexDep, settings: SettingsDep, metrics: MetricsDep
) -> Response:
    """The k nearest stored items of each query, closest first."""
    check_batch(body.num_queries, settings, "queries")
    check_max_k(body.k, settings)
    check_results(body.k, body.num_queries, settings)
    body.filter = class_filter(body.filter, classifier)
    queries, result = None, None
    small = body.queries is None or all(query.image is None and query.id is None for query in body.queries)
    if small and isinstance(index, InlineSearch):
        queries = _query_vectors(body, classifier, index, settings)  # decoding only: no model, no store
        result = index.search_now(
            queries, body.k, metric=body.metric, temperature=body.temperature, filter=body.filter,
            exact=body.exact, target_recall=body.target_recall, max_values=INLINE_VALUES,
        )  # fmt: skip
    if result is None:
        result = await run_in_threadpool(_search, body, queries, classifier, index, settings)
    metrics.queries.labels(index.name, body.metric).inc(body.num_queries)
    if body.describe:
        described = await run_in_threadpool(_describe, index, result, body.k * body.num_queries)
        return search_response(result, body.metric, body.temperature, described)
    return search_response(result, body.metric, body.temperature)


#: Hits a described search may carry (each reads the stored item and its thumbnail's presence).
MAX_DESCRIBED = 1000


def _describe(index: VectorStore, result: SearchResult, asked: int) -> dict[str, tuple[int, bool]]:
    """Each hit's predicted class and whether it has a thumbnail, read from the store."""
    if asked > MAX_DESCRIBED:
        raise InvalidInputError(f'"describe": true describes at most {MAX_DESCRIBED} hits (k x queries), not {asked}')
    ids = {item_id for hits in result.columns() for item_id in hits.ids}
    return {
        item_id: (int(np.argmax(index.get(item_id).logits)), index.thumbnail(item_id) is not None) for item_id in ids
    }


def _search(
    body: SearchRequest, queries: np.ndarray | None, classifier: Classifier, index: VectorStore, settings: Settings
) -> SearchResult:
    """The search in the thread pool, with the query vectors when they are already decoded."""
    if queries is None:
        queries = _query_vectors(body, classifier, index, settings)
    return index.search(
        queries,
        body.k,
        metric=body.metric,
        temperature=body.temperature,
        filter=body.filter,
        exact=body.exact,
        target_recall=body.target_recall,
    )


@router.post("/image", response_model=SearchResponse)
def search_image(
    file: Annotated[UploadFile, File(description="The query image", json_schema_extra={"minLength": 1})],
    classifier: ClassifierDep,
    index: IndexDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    k: Annotated[int, Form(ge=1)] = 10,
    metric: Annotated[str, Form()] = "l2",
    temperature: Annotated[Temperature, Form()] = 1.0,
) -> Response:
    """Shortcut: the k nearest stored items of one uploaded image."""
    check_max_k(k, settings)
    image = decode_one(file.file.read(settings.max_image_bytes + 1), settings, "file")
    result = index.search(classifier.logits_from_images([image]), k, metric=metric, temperature=temperature)
    metrics.queries.labels(index.name, metric).inc()
    return search_response(result, metric, temperature)


@router.post("/agreement", responses={404: {"model": ErrorResponse, "description": "The query names an unknown id"}})
def check_search_agreement(
    body: AgreementRequest, classifier: ClassifierDep, index: IndexDep, settings: SettingsDep
) -> AgreementResponse:
    """Does the metric follow CE here: its top-k against the exact reference top-k for one query."""
    check_max_k(body.k, settings)
    query = resolve_vectors([body.query], classifier, index, settings, where="query")[0]
    filter = class_filter(body.filter, classifier)
    found = check_agreement(index, query, body.k, body.metric, body.reference, body.temperature, filter)
    answer = AgreementResponse.model_validate(found, from_attributes=True)
    if body.temperatures:
        at = [check_agreement(index, query, body.k, body.metric, body.reference, t, filter) for t in body.temperatures]
        answer.sweep = [{"temperature": a.temperature, "overlap": a.overlap, "spearman": a.spearman} for a in at]
    return answer
