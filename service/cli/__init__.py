"""`logitsearch`: serve, train, index and search from the command line (a thin layer over the library)."""

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
from pydantic import ValidationError

from indexes.errors import IndexError_
from models.errors import ModelError

from ..errors import ServiceError
from ..logs import configure_logging
from .experiments import (
    add_compare_parser,
    add_evaluate_parser,
    add_train_parser,
    compare_training,
    evaluate_index,
    train_model,
)
from .options import add_settings_flags, settings_from_args, temperatures
from .serving import add_models_parser, build_index, list_indexes, manage_models, search_service, serve_api

__all__ = ["build_parser", "main", "settings_from_args"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    from models.loader import PRECISIONS

    parser = argparse.ArgumentParser(prog="logitsearch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the REST API (builds the embedded default on first start)")
    add_settings_flags(serve)

    add_train_parser(sub)
    add_compare_parser(sub)

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
    index.add_argument(
        "--target-recall", type=float, default=0.95, help="faiss hnsw/ivf: recall@10 searches reach (default 0.95)"
    )
    index.add_argument("--batch-size", type=int, default=256, help="images per forward pass (default 256)")
    index.add_argument(
        "--workers", type=int, help="processes decoding images while the model runs (default: cores - 1; 0: none)"
    )
    index.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="bf16/fp16: autocast on a CUDA device (default fp32)"
    )
    add_settings_flags(index)

    indexes = sub.add_parser("indexes", help="the indexes under DATA_DIR/indexes")
    indexes_sub = indexes.add_subparsers(dest="indexes_command", required=True)
    add_settings_flags(indexes_sub.add_parser("list", help="print every index with its model, size and status"))

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

    add_evaluate_parser(sub)
    add_models_parser(sub)
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
    return search_service(args, sys.stdout)


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
