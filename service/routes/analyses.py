"""The analyses of an index's stored outputs: label issues, near-duplicates, uncertain items, confusion, distance
matrices and calibration of the cheap metrics against cross-entropy (`evaluation.analyses`)."""

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Path, Request

from evaluation.analyses import AnalysisOptions, run_analysis

from ..http.deps import ClassifierDep, IndexDep
from ..http.listing import class_filter
from ..http.routing import OffLoopRoute
from ..schemas import ANALYSIS_KINDS, AnalysisRequest, AnalysisResponse

router = APIRouter(route_class=OffLoopRoute, prefix="/analyses", tags=["analyses"])
KindPath = Annotated[str, Path(description=", ".join(ANALYSIS_KINDS), json_schema_extra={"enum": list(ANALYSIS_KINDS)})]


@router.post("/{kind}", response_model=AnalysisResponse)
def analyse(
    kind: KindPath, body: AnalysisRequest, index: IndexDep, classifier: ClassifierDep, request: Request
) -> AnalysisResponse:
    """Run one analysis on the items matching the filter, in the thread pool within the request's time limit.

    The last calibration of the whole index (no filter) is shown by `GET /v1/indexes/{name}` while the index holds as
    many items as it did (kept in memory: a restart forgets it)."""
    options = AnalysisOptions(**(body.model_dump() | {"filter": class_filter(body.filter, classifier)}))
    labels = list(classifier.spec.labels) if classifier.spec.labels else None
    result = run_analysis(kind, index, options, labels)
    if kind == "calibration" and body.filter is None:
        shown = {
            "target": options.target,
            "temperature_reaching_target": {r["metric"]: r["reaches_at"] for r in result.rows},
        }
        request.app.state.calibrations[index.name] = (result.read, shown)
    return AnalysisResponse(**dataclasses.asdict(result))
