"""Prometheus metrics: request counts and latencies per handler, in a registry owned by the app."""

import time

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
        self.items = Counter("logitsearch_items_written", "Items upserted", ["index"], registry=self.registry)
        self.queries = Counter(
            "logitsearch_queries", "Search queries answered", ["index", "metric"], registry=self.registry
        )


class MetricsMiddleware:
    """Times every HTTP request (a plain ASGI middleware: `BaseHTTPMiddleware` costs ~1 ms a request)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            # The handler's name, not the path: low cardinality, and routers included under a prefix only
            # know their own part of the path template.
            handler = getattr(scope.get("endpoint"), "__name__", "unmatched")
            self.metrics.latency.labels(scope["method"], handler).observe(time.perf_counter() - start)
            self.metrics.requests.labels(scope["method"], handler, str(status)).inc()


def install_metrics(app: FastAPI) -> Metrics:
    """Attach a `Metrics` to `app.state.metrics` and time every request."""
    metrics = Metrics()
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics
