"""Retrieval evaluation against the cross-entropy ranking, on an index and its model."""

import threading

from fastapi import APIRouter, HTTPException, status

from evaluation.options import EvaluationOptions
from evaluation.report import evaluate_store

from ..errors import LimitExceededError
from ..evaluation_schemas import EvaluateRequest, EvaluateResponse
from ..http.deps import IndexDep, SettingsDep, SpecDep
from ..http.routing import OffLoopRoute

router = APIRouter(route_class=OffLoopRoute, tags=["evaluation"])

# One evaluation at a time per process: each one is CPU-bound for seconds, and queuing more behind it would
# starve searches of the cores, so a second request is refused with 429 instead of waiting.
_ONE_AT_A_TIME = threading.Lock()


def _check_limit(value: int, limit: int, what: str, setting: str) -> None:
    if value > limit:
        raise LimitExceededError(f"{what} = {value} is above the limit of {limit} (LOGITSEARCH_{setting})")


def _options(body: EvaluateRequest, settings: SettingsDep, count: int) -> EvaluationOptions:
    """The evaluation options of a request, within the service's limits (each refused with 422)."""
    num_queries = len(body.logits) if body.logits is not None else body.num_queries
    _check_limit(num_queries, settings.max_eval_queries, "number of evaluation queries", "MAX_EVAL_QUERIES")
    _check_limit(body.num_items or 0, settings.max_eval_items, "num_items", "MAX_EVAL_ITEMS")
    num_items = body.num_items or (settings.max_eval_items if count > settings.max_eval_items else None)
    work = num_queries * len(body.temperatures) * min(num_items or count, count)
    _check_limit(work, settings.max_eval_work, "queries x temperatures x ranked items", "MAX_EVAL_WORK")
    return EvaluationOptions(
        num_queries=num_queries,
        temperatures=tuple(body.temperatures),
        k=body.k,
        metrics=tuple(body.metrics),
        seed=body.seed,
        num_items=num_items,
    )


@router.post(
    "/evaluate",
    responses={429: {"description": "Another evaluation is running"}, 422: {"description": "Bad or too large options"}},
)
def evaluate_retrieval(
    body: EvaluateRequest, spec: SpecDep, index: IndexDep, settings: SettingsDep
) -> EvaluateResponse:
    """How closely each search metric follows the CE ranking, correlations between measures, and separability."""
    options = _options(body, settings, index.count())
    if not _ONE_AT_A_TIME.acquire(blocking=False):
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail="an evaluation is already running; retry later")
    try:
        report = evaluate_store(index, spec, options, query_logits=body.logits)
    finally:
        _ONE_AT_A_TIME.release()
    return EvaluateResponse.model_validate(report)
