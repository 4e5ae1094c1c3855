"""`logitsearch`: serve, train, index and search from the command line (a thin layer over the library)."""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from ..logs import configure_logging
from .experiments import (
    add_compare_options,
    add_evaluate_options,
    add_train_options,
    compare_training,
    evaluate_index,
    train_model,
)
from .options import (
    INDEX_SETTINGS,
    STORE_SETTINGS,
    Parser,
    add_settings_flags,
    describe_validation_error,
    floats,
    settings_from_args,
    temperatures,
)
from .serving import add_models_options, build_index, list_indexes, manage_models, search_service, serve_api

__all__ = ["build_parser", "main", "settings_from_args"]

logger = logging.getLogger(__name__)


def _add_index_options(index: argparse.ArgumentParser) -> None:
    from models.loader import PRECISIONS

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
    index.add_argument(
        "--index-type",
        choices=["flat", "hnsw", "ivf"],
        default="flat",
        help="flat: exact (default); hnsw or ivf: approximate search, re-ranked exactly (ivf: faiss only)",
    )
    index.add_argument(
        "--temperatures",
        type=temperatures,
        help="comma-separated; pgvector: the temperatures it searches at; faiss hnsw/ivf: those served approximately "
        "(ce and kl over their whole range, js and tri at each); default 1.0",
    )
    index.add_argument(
        "--ann-metrics",
        type=lambda text: [m.strip() for m in text.split(",") if m.strip()],
        help="faiss hnsw/ivf: comma-separated metrics served approximately (default l2,ce,kl)",
    )
    index.add_argument(
        "--codec", choices=["float32", "float16", "sq8"], default="float32", help="faiss hnsw/ivf: candidate codec"
    )
    index.add_argument("--target-recall", type=float, default=0.95, help="faiss hnsw/ivf: recall@10 searches reach")
    index.add_argument(
        "--originals", choices=["memory", "disk"], default="memory", help="faiss hnsw/ivf: disk = memory-mapped logits"
    )
    index.add_argument(
        "--rerank-codec",
        choices=["float32", "float16"],
        default="float32",
        help="faiss hnsw/ivf: float16 = re-rank from a copy in memory (with --originals disk)",
    )
    index.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    index.add_argument(
        "--workers", type=int, help="processes decoding images while the model runs (default: cores - 1; 0: none)"
    )
    index.add_argument("--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16: autocast on a CUDA device")
    index.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="with --images or --data fashion-mnist: embed on a Dask cluster, its scheduler tcp://HOST:PORT or local:N "
        "(N worker processes here); workers need this package and, for --images, the images' paths",
    )
    add_settings_flags(index, (*INDEX_SETTINGS, "max_image_bytes", "max_image_pixels"))


def _add_indexes_options(indexes: argparse.ArgumentParser) -> None:
    indexes_sub = indexes.add_subparsers(dest="indexes_command", required=True)
    listing = indexes_sub.add_parser("list", help="print every index with its model, size and status")
    add_settings_flags(listing, STORE_SETTINGS)


def _add_analyse(parser: argparse.ArgumentParser) -> None:
    from .analysing import add_analyse_options

    add_analyse_options(parser)


def _add_search_options(search: argparse.ArgumentParser) -> None:
    from ..schemas import SEARCH_METRICS

    source = search.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="query image file")
    source.add_argument("--id", help="stored item id")
    source.add_argument("--logits", type=floats, help="comma-separated logits")
    search.add_argument("-k", type=int, default=10, help="neighbours to print")
    search.add_argument("--metric", choices=SEARCH_METRICS, default="l2", help="distance or divergence")
    search.add_argument("--temperature", type=float, default=1.0, help="softmax temperature of the divergences")
    search.add_argument("--index", help="search this index (default: the service's default index)")
    search.add_argument("--url", default="http://127.0.0.1:8000", help="the service")
    search.add_argument("--api-key", help="the service's API key, when it has one")
    search.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")


#: Each command: its help line, and what adds its options (which may import the library code they name).
_COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "serve": ("serve the REST API (builds the embedded default on first start)", add_settings_flags),
    "train": ("train on the digits or an image folder; save under DATA_DIR/models", add_train_options),
    "compare-training": ("train every loss variant on the same data and seeds; report", add_compare_options),
    "index": (
        "build or extend an index (--index NAME, created bound to --model when absent) from images or the digits",
        _add_index_options,
    ),
    "indexes": ("the indexes under DATA_DIR/indexes", _add_indexes_options),
    "search": ("query a running service and print a table", _add_search_options),
    "analyse": ("run an analysis (label-issues, near-duplicates, ...) on a running service's index", _add_analyse),
    "evaluate": ("compare search metrics with the cross-entropy ranking; write a report", add_evaluate_options),
    "models": ("the models under DATA_DIR/models, and pretrained ones to install", add_models_options),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or, given `command`, of that one only: the others keep their name and help but
    get no options, so that `logitsearch --help` and `logitsearch search` import no model or index code."""
    parser = Parser(prog="logitsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_line, add_options) in _COMMANDS.items():
        options = sub.add_parser(name, help=help_line)
        if command is None or command == name:
            add_options(options)
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return serve_api(args)
    if args.command == "train":
        return train_model(args)
    if args.command == "compare-training":
        return compare_training(args)
    if args.command == "index":
        return build_index(args)
    if args.command == "evaluate":
        return evaluate_index(args)
    if args.command == "indexes":
        return list_indexes(args, sys.stdout)
    if args.command == "models":
        return manage_models(args, sys.stdout)
    if args.command == "analyse":
        from .analysing import analyse_index

        return analyse_index(args, sys.stdout)
    return search_service(args, sys.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an error is one log line and exit code 2, never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else "").parse_args(argv)
    level = getattr(args, "log_level", None) or "info"
    configure_logging(level)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    except ValidationError as exc:
        logger.error("%s", describe_validation_error(exc))
    except Exception as exc:
        if not _is_domain_error(exc):
            raise
        hint = "; is `logitsearch serve` running at --url?" if type(exc).__name__ == "ConnectionFailed" else ""
        logger.error("%s%s", " ".join(str(exc).split()), hint)
    return 2


#: The libraries' error classes, reported as one line: looked up only in modules already imported (an error of a
#: module that was never imported cannot have been raised), so that the CLI imports none of them up front.
_DOMAIN_ERRORS = (
    ("models.errors", "ModelError"),
    ("indexes.errors", "IndexError_"),
    ("service.errors", "ServiceError"),
    ("service.client.errors", "LogitSearchError"),  # what the service answered to a command that asked it
)


def _is_domain_error(exc: Exception) -> bool:
    if isinstance(exc, ValidationError | OSError):
        return True
    loaded = (getattr(sys.modules[module], name) for module, name in _DOMAIN_ERRORS if module in sys.modules)
    return any(isinstance(exc, error) for error in loaded)


if __name__ == "__main__":
    raise SystemExit(main())
