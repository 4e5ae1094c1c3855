"""Prometheus metrics: request counts and latencies per route, in a registry owned by the app."""

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    """The collectors of one app; a registry per app keeps test apps from colliding."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "logitsearch_requests", "HTTP requests", ["method", "handler", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "logitsearch_request_seconds", "HTTP request latency", ["method", "handler"], registry=self.registry
        )
        self.items = Counter("logitsearch_items_written", "Items upserted", registry=self.registry)
        self.queries = Counter("logitsearch_queries", "Search queries answered", ["metric"], registry=self.registry)


def install_metrics(app: FastAPI) -> Metrics:
    """Attach a `Metrics` to `app.state.metrics` and time every request."""
    metrics = Metrics()
    app.state.metrics = metrics

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        # The handler's name, not the path: low cardinality, and routers included under a prefix only know
        # their own part of the path template.
        handler = getattr(request.scope.get("endpoint"), "__name__", "unmatched")
        metrics.latency.labels(request.method, handler).observe(time.perf_counter() - start)
        metrics.requests.labels(request.method, handler, str(response.status_code)).inc()
        return response

    return metrics
