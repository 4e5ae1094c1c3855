"""Liveness, readiness and Prometheus metrics (outside /v1, for orchestrators)."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..deps import MetricsDep

router = APIRouter(tags=["health"])


@router.get("/health")
def check_health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "Model or index not loaded yet"}})
def check_ready(request: Request) -> JSONResponse:
    """Readiness: 200 once the model and the index are loaded, 503 before."""
    index = getattr(request.app.state, "index", None)
    classifier = getattr(request.app.state, "classifier", None)
    if index is None or classifier is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse({"status": "ready", "model": classifier.spec.name, "index": index.name, "count": index.count()})


@router.get("/metrics", response_class=Response)
def get_metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
