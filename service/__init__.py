"""FastAPI service and CLI of logit-search."""

__version__ = "0.1.0"
