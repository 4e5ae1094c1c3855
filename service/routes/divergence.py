"""Divergences between classifier outputs."""

from typing import Any

import numpy as np
from fastapi import APIRouter

from indexes.divergences import compute_divergences

from ..http.deps import SettingsDep
from ..http.inputs import check_batch
from ..http.routing import OffLoopRoute
from ..schemas import DivergenceRequest, DivergenceResponse

router = APIRouter(route_class=OffLoopRoute, tags=["divergence"])


def _to_json(values: np.ndarray) -> Any:
    """Floats as lists, with +inf (a divergence with zeros in probability input) as null."""
    cells = values.astype(object)
    cells[~np.isfinite(values)] = None
    return cells.tolist()


@router.post("/divergence")
def compute_divergence(body: DivergenceRequest, settings: SettingsDep) -> DivergenceResponse:
    """CE, KL (both ways), JS, triangular and Euclidean between rows of a and b (or every pair)."""
    for name, rows in (("a", body.a), ("b", body.b)):
        check_batch(len(rows) if rows and isinstance(rows[0], list) else 1, settings, f"rows in {name}")
    values = compute_divergences(
        body.a,
        body.b,
        measures=body.measures,
        input=body.input,
        temperature=body.temperature,
        base=body.base,
        pairwise=body.pairwise,
    )
    return DivergenceResponse(
        input=body.input,
        temperature=body.temperature,
        base=body.base,
        values={name: _to_json(v) for name, v in values.items()},
    )
