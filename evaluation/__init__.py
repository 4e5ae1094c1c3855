"""Evaluation of L2-over-logits retrieval against the cross-entropy ranking, and the papers behind it."""

from .errors import EvaluationConfigError as EvaluationConfigError
from .evaluator import RankingConfig as RankingConfig
from .evaluator import RankingRow as RankingRow
from .evaluator import RetrievalEvaluator as RetrievalEvaluator
from .measures import RANKING_METRICS as RANKING_METRICS
from .options import EvaluationOptions as EvaluationOptions
from .report import evaluate_store as evaluate_store
from .report import write_report as write_report
