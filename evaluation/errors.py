"""Domain errors of the evaluation package; they subclass the `indexes` input error, so the service answers 422."""

from indexes.errors import InvalidInputError


class EvaluationConfigError(InvalidInputError):
    """An evaluation option that cannot be used: a bad temperature, k, sample size or metric name."""


class AnalysisUnavailableError(Exception):
    """An analysis needs a package this installation lacks (the service answers 503 naming it)."""
