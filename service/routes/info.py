"""What the service is serving."""

from fastapi import APIRouter

from .. import __version__
from ..http.deps import ClassifierDep, IndexDep, SettingsDep
from ..http.routing import OffLoopRoute
from ..schemas import IndexInfo, InfoResponse, Limits, ModelInfo

router = APIRouter(route_class=OffLoopRoute, tags=["info"])


@router.get("/info")
def get_info(classifier: ClassifierDep, index: IndexDep, settings: SettingsDep) -> InfoResponse:
    """Version, model and index of this service."""
    spec = classifier.spec
    return InfoResponse(
        version=__version__,
        model=ModelInfo.from_spec(spec),
        index=IndexInfo(
            name=index.name, count=index.count(), dim=index.dim, device=index.device, index_type=index.index_type
        ),
        limits=Limits(
            max_batch=settings.max_batch,
            max_k=settings.max_k,
            max_results=settings.max_results,
            max_image_bytes=settings.max_image_bytes,
            max_body_bytes=settings.max_body_bytes,
        ),
    )
