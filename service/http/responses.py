"""Responses written straight to JSON from the store's columns, without one pydantic object per neighbour.

Validating and serialising a `SearchResponse` model builds a pydantic object per neighbour (2,560 for a batch
of 256 at k = 10), and the churn of those objects triggers the cyclic garbage collector, which then walks the
whole heap: together most of a batch request's time outside the search (PERF-NOTES.md). The search routes
declare `SearchResponse` for the OpenAPI schema and write the same JSON here from plain lists, with pydantic-core's
serialiser and the collector paused.
"""

import pydantic_core
from starlette.responses import Response

from indexes.store import SearchResult

from .routing import paused_gc


def search_response(result: SearchResult, metric: str, temperature: float) -> Response:
    """The JSON of a `SearchResponse`: `{"metric", "temperature", "exact", "recall_at_10", "results": [[{"id",
    "distance", "metadata"}]]}`."""
    with paused_gc():
        results = [
            [
                {"id": item_id, "distance": distance, "metadata": metadata}
                for item_id, distance, metadata in zip(hits.ids, hits.distances.tolist(), hits.metadata, strict=True)
            ]
            for hits in result.columns()
        ]
        # Non-finite distances as null, as pydantic writes a model's floats.
        body = pydantic_core.to_json(
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
