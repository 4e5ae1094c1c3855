"""Request and response bodies of `POST /v1/evaluate`; the response is the JSON of ``report.json``."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from evaluation.evaluator import RankingRow
from evaluation.measures import RANKING_METRICS
from evaluation.options import DEFAULT_TEMPERATURES, MAX_K, MAX_TEMPERATURES

EvalTemperature = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Softmax temperature T > 0")]


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_queries: int = Field(
        200, ge=1, description="Queries sampled from the index (test split first), 1..MAX_EVAL_QUERIES"
    )
    temperatures: list[EvalTemperature] = Field(
        default_factory=lambda: list(DEFAULT_TEMPERATURES), min_length=1, max_length=MAX_TEMPERATURES
    )
    k: int = Field(10, ge=1, le=MAX_K, description="Neighbours for overlap, recall, nDCG and label precision")
    metrics: list[Annotated[str, Field(json_schema_extra={"enum": list(RANKING_METRICS)})]] = Field(
        default_factory=lambda: list(RANKING_METRICS), min_length=1, description=f"From {', '.join(RANKING_METRICS)}"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seeds every sample: same seed, same report")
    num_items: int | None = Field(
        None, ge=2, description="Rank each query against a seeded sample of this many items (default: all, capped)"
    )
    logits: list[list[float]] | None = Field(
        None, min_length=1, description="Query logits to use instead of sampled items (then num_queries is ignored)"
    )


class PairwiseRowOut(BaseModel):
    temperature: float
    a: str
    b: str
    pearson: float | None
    spearman: float | None


class SeparabilityRowOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # test_accuracy, intra_mean, inter_mean when the trajectory has them

    epoch: int | None
    loss: float | None
    p_inter_gt_intra: float


class EvaluateResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    config: dict[str, Any]
    primary_metric: dict[str, Any]
    ranking: list[RankingRow]  # the evaluator's own dataclass: one definition of the row
    reference: list[dict[str, Any]]
    pairwise: list[PairwiseRowOut]
    separability: list[SeparabilityRowOut]
    separability_index: dict[str, Any] | None
    notes: list[str]
