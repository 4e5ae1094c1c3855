"""Responses written straight to JSON from the store's columns, without one pydantic object per neighbour.

Validating and serialising a `SearchResponse` model builds a pydantic object per neighbour (2,560 for a batch
of 256 at k = 10), and the churn of those objects triggers the cyclic garbage collector, which then walks the
whole heap: together most of a batch request's time outside the search (PERF-NOTES.md). The search routes
declare `SearchResponse` for the OpenAPI schema and write the same JSON here from plain lists, with pydantic-core's
serialiser and the collector paused.

Nothing stored may make a read fail: a string UTF-8 cannot encode (a lone surrogate, refused at write since
`check_metadata` looks for it, but possibly stored before) goes out as U+FFFD, with one warning in the log.
"""

import logging
import re
from typing import Any

import pydantic_core
from pydantic import BaseModel
from starlette.responses import Response

from indexes.store import SearchResult

from .routing import paused_gc

logger = logging.getLogger(__name__)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: Whether the replacement of unencodable text has been logged in this process (once is enough to notice).
_replaced_logged = False


def to_json(value: Any, **options: Any) -> bytes:
    """`pydantic_core.to_json(value, **options)`, with strings UTF-8 cannot encode written as U+FFFD."""
    try:
        return pydantic_core.to_json(value, **options)
    except pydantic_core.PydanticSerializationError as exc:
        if "UnicodeEncodeError" not in str(exc):
            raise
    _log_replaced()
    return pydantic_core.to_json(replace_unencodable(value), **options)


def model_response(model: BaseModel) -> Response:
    """The JSON of `model` without None fields (as `response_model_exclude_none`), never failing on its text."""
    try:
        body = model.__pydantic_serializer__.to_json(model, exclude_none=True)
    except pydantic_core.PydanticSerializationError as exc:
        if "UnicodeEncodeError" not in str(exc):
            raise
        _log_replaced()
        body = pydantic_core.to_json(replace_unencodable(model.model_dump(exclude_none=True)))
    return Response(body, media_type="application/json")


def replace_unencodable(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, numbers) with every lone surrogate in keys and strings as U+FFFD."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {replace_unencodable(key): replace_unencodable(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [replace_unencodable(child) for child in value]
    return value


def _log_replaced() -> None:
    global _replaced_logged
    if not _replaced_logged:
        _replaced_logged = True
        logger.warning(
            "stored text that UTF-8 cannot encode (a lone surrogate) was written as U+FFFD in a response; "
            "rewrite the items holding it (logged once per process)"
        )


def search_response(
    result: SearchResult, metric: str, temperature: float, described: dict[str, tuple[int, bool]] | None = None
) -> Response:
    """The JSON of a `SearchResponse`: `{"metric", "temperature", "exact", "recall_at_10", "results": [[{"id",
    "distance", "metadata"}]]}`, each hit with `predicted` and `thumbnail` from `described` when given."""
    with paused_gc():
        results = [
            [
                {"id": item_id, "distance": distance, "metadata": metadata}
                | ({"predicted": described[item_id][0], "thumbnail": described[item_id][1]} if described else {})
                for item_id, distance, metadata in zip(hits.ids, hits.distances.tolist(), hits.metadata, strict=True)
            ]
            for hits in result.columns()
        ]
        # Non-finite distances as null, as pydantic writes a model's floats.
        body = to_json(
            {
                "metric": metric,
                "temperature": temperature,
                "exact": result.exact,
                "recall_at_10": result.recall_at_10,
                "results": results,
            },
            inf_nan_mode="null",
        )
        del results
    return Response(body, media_type="application/json")
