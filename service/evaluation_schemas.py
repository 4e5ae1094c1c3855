"""Request and response bodies of `POST /v1/evaluate`: they live in `service.schemas`, the wire module."""

from .schemas import EvalTemperature as EvalTemperature
from .schemas import EvaluateRequest as EvaluateRequest
from .schemas import EvaluateResponse as EvaluateResponse
from .schemas import PairwiseRowOut as PairwiseRowOut
from .schemas import RankingRow as RankingRow
from .schemas import SeparabilityRowOut as SeparabilityRowOut
