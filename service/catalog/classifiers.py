"""The models under `DATA_DIR/models/`: listed from their specs, loaded on first use and shared by every index."""

import logging
import threading

from models import Classifier, ModelError, ModelNotFoundError, ModelSpec, read_spec, saved_model_names

from ..config import Settings
from ..errors import ModelUnavailableError
from .bootstrap import load_model

logger = logging.getLogger(__name__)


class ModelCache:
    """The loaded models by name; thread-safe. One model loads at a time; lookups of loaded ones do not wait."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: dict[str, Classifier] = {}
        self._lock = threading.Lock()

    def specs(self) -> list[ModelSpec]:
        """The spec of every model saved under `DATA_DIR/models/` whose spec reads; the others are logged."""
        specs = []
        for name in saved_model_names(self.settings.models_dir):
            try:
                specs.append(read_spec(self.settings.models_dir, name))
            except ModelError as exc:
                logger.warning("model %r is not listed: %s", name, exc)
        return specs

    def loaded(self, name: str) -> Classifier | None:
        """The model `name` if it is loaded already (a cheap check before `get`, which may load)."""
        return self._loaded.get(name)

    def get(self, name: str, progress: bool = False) -> Classifier:
        """The model `name`, loaded on first use (the default one is trained if absent).

        Raises:
            ModelNotFoundError: no such model (404).
            ModelUnavailableError: its files are there but do not load (503).
        """
        if (loaded := self._loaded.get(name)) is not None:
            return loaded
        with self._lock:
            if (loaded := self._loaded.get(name)) is None:
                settings = self.settings.model_copy(update={"model": name})
                try:
                    loaded = self._loaded[name] = load_model(settings, progress=progress)
                except ModelNotFoundError:
                    raise
                except ModelError as exc:
                    raise ModelUnavailableError(f"model {name!r} cannot be loaded: {exc}") from exc
        return loaded
