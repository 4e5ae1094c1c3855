"""First-start work, done explicitly by whoever starts the service (`logitsearch serve`, the app's lifespan,
`logitsearch index` and `evaluate`), never inside a request: the embedded default model trained when absent, the
default index created, and filled with the digits.

The model cache and the catalog only load and open what exists.
"""

import logging

from models import TrainConfig, model_exists, train_classifier
from models.device import resolve_device

from ..config import DEFAULT_INDEX, DEFAULT_MODEL, Settings
from .bootstrap import add_digits, backfill_digit_thumbnails, import_plugins, training_lock
from .registry import Catalog

logger = logging.getLogger(__name__)


def train_default_model(settings: Settings, progress: bool = False) -> bool:
    """Train the embedded default model (`digits-cnn`, a few seconds) when `settings.model` is it and it is absent;
    whether it was trained here. Another process training it meanwhile is waited for."""
    if settings.model != DEFAULT_MODEL or model_exists(settings.models_dir, settings.model):
        return False
    import_plugins(settings.plugins)
    logger.info("model %r not found in %s: training it on scikit-learn's digits", settings.model, settings.models_dir)
    with training_lock(settings.models_dir, settings.model):
        if model_exists(settings.models_dir, settings.model):  # another process trained it meanwhile
            return False
        device = resolve_device(settings.device)
        train_classifier(TrainConfig(name=settings.model), settings.models_dir, device=device, progress=progress)
    return True


def first_start(catalog: Catalog, progress: bool = False) -> None:
    """Everything a first start needs: the default model trained if absent, the default index created and
    opened (`Catalog.open_default`), and filled with the digits when it is the embedded default and empty."""
    settings = catalog.settings
    train_default_model(settings, progress)
    catalog.open_default(progress)
    fill_default_index(catalog, progress)


def fill_default_index(catalog: Catalog, progress: bool = False) -> None:
    """The 1,797 digits into the embedded default index when it is empty (their thumbnails into one built before
    thumbnails existed); nothing for any other index, or while it is unavailable."""
    name = catalog.settings.index
    if name != DEFAULT_INDEX or name not in catalog or catalog.ready() is False:
        return
    entry = catalog.entry(name)
    if entry.model != DEFAULT_MODEL:
        return
    store, classifier = catalog.store(name), catalog.index_model(name)
    if store.count() == 0:
        add_digits(store, classifier, progress=progress, thumbnails=entry.thumbnails)
        store.save()
    elif entry.thumbnails:
        backfill_digit_thumbnails(store, classifier)
