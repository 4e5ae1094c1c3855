"""What the service is serving."""

from fastapi import APIRouter

from .. import __version__
from ..deps import ClassifierDep, IndexDep
from ..routing import OffLoopRoute
from ..schemas import IndexInfo, InfoResponse, ModelInfo

router = APIRouter(route_class=OffLoopRoute, tags=["info"])


@router.get("/info")
def get_info(classifier: ClassifierDep, index: IndexDep) -> InfoResponse:
    """Version, model and index of this service."""
    spec = classifier.spec
    return InfoResponse(
        version=__version__,
        model=ModelInfo.from_spec(spec),
        index=IndexInfo(
            name=index.name, count=index.count(), dim=index.dim, device=index.device, index_type=index.index_type
        ),
    )
