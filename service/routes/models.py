"""The models the indexes are bound to (`POST /v1/models/{model_name}/embed` is the embed router's)."""

from fastapi import APIRouter

from ..http.deps import CatalogDep
from ..http.routing import OffLoopRoute
from ..schemas import ModelDescription, ModelList

router = APIRouter(route_class=OffLoopRoute, prefix="/models", tags=["models"])


@router.get("")
def list_models(catalog: CatalogDep) -> ModelList:
    """Every model under DATA_DIR/models: classes, labels, input size, sha256 and how it was trained."""
    return ModelList(
        models=[
            ModelDescription.from_spec(
                spec, arch=spec.arch, training=spec.training, loaded=catalog.models.loaded(spec.name) is not None
            )
            for spec in catalog.models.specs()
        ]
    )
