"""The models the indexes are bound to (`POST /v1/models/{model_name}/embed` is the embed router's)."""

from fastapi import APIRouter

from models import ModelSpec

from ..deps import CatalogDep
from ..routing import OffLoopRoute
from ..schemas import ModelDescription, ModelList

router = APIRouter(route_class=OffLoopRoute, prefix="/models", tags=["models"])


def _describe(spec: ModelSpec, loaded: bool) -> ModelDescription:
    return ModelDescription(
        name=spec.name,
        arch=spec.arch,
        num_classes=spec.num_classes,
        labels=list(spec.labels),
        input_size=spec.input_size,
        channels=spec.channels,
        sha256=spec.sha256,
        training=spec.training,
        loaded=loaded,
    )


@router.get("")
def list_models(catalog: CatalogDep) -> ModelList:
    """Every model under DATA_DIR/models: classes, labels, input size, sha256 and how it was trained."""
    return ModelList(
        models=[_describe(spec, catalog.loaded_model(spec.name) is not None) for spec in catalog.model_specs()]
    )
