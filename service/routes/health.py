"""Liveness, readiness and Prometheus metrics (outside /v1, for orchestrators)."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..catalog.registry import Catalog
from ..http.deps import MetricsDep
from ..http.routing import OffLoopRoute

router = APIRouter(route_class=OffLoopRoute, tags=["health"])


@router.get("/health")
async def check_health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "The default index or its model is not loaded"}})
def check_ready(request: Request) -> JSONResponse:
    """Readiness: 200 once the default index and its model are loaded, 503 before (or when they cannot be)."""
    catalog: Catalog | None = getattr(request.app.state, "catalog", None)
    if catalog is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    status = catalog.status(catalog.settings.index)
    if not catalog.ready():
        body = {"status": "unavailable", "index": status.entry.name, "reason": status.reason or "model not loaded"}
        return JSONResponse(body, status_code=503)
    return JSONResponse(
        {"status": "ready", "model": status.entry.model, "index": status.entry.name, "count": status.count}
    )


@router.get("/metrics", response_class=Response)
def get_metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
