"""Does L2 follow CE on a real network? Index Fashion-MNIST through a model, evaluate, keep the logits.

Installs the model if it is a pretrained one (`models install`), fills the index `fashion-<model>` with
Fashion-MNIST's photos through `logitsearch index --data fashion-mnist` (resuming), runs `logitsearch evaluate`'s
report over it, and writes, under ``--out``:

- ``report.json``, ``report.md`` and the plots;
- ``logits.npz``: the ids and float16 logits of every indexed item, the model's sha256, and this command, so the
  report can be recomputed without the CPU time of the network, and CI can re-embed a few photos and compare.

    python bench/real_networks.py --model efficientnet-lite0 --limit 5000 --out bench/results/real-networks/lite0
    python bench/real_networks.py --model fashion-cnn --data-dir data --out reports/fashion-cnn --no-logits
"""

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from evaluation.dataset import load_items
from evaluation.options import EvaluationOptions
from evaluation.report import evaluate_store, write_report
from indexes.device import configure_cpu
from models import model_exists
from models.zoo import ZOO, install_model
from service.catalog.bootstrap import add_fashion
from service.catalog.registry import Catalog
from service.config import Settings

logger = logging.getLogger("bench.real_networks")


def save_logits(path: Path, ids: list[str], logits: np.ndarray, model_sha256: str, command: str) -> None:
    """``ids`` (n,) str, ``logits`` (n, C) as float16, the model's sha256 and the command, compressed."""
    np.savez_compressed(
        path, ids=np.asarray(ids), logits=logits.astype(np.float16), model_sha256=model_sha256, command=command
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved model, or a pretrained one to install")
    parser.add_argument("--limit", type=int, help="at most this many photos of each split (default all 70,000)")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-queries", type=int, default=200)
    parser.add_argument("--num-threads", type=int, default=2)
    parser.add_argument("--no-logits", action="store_true", help="do not write logits.npz")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    command = shlex.join(["python", "bench/real_networks.py", *sys.argv[1:]])
    settings = Settings(data_dir=args.data_dir, num_threads=args.num_threads, faiss_gpu="false")
    configure_cpu(settings.num_threads)
    if args.model in ZOO and not model_exists(settings.models_dir, args.model):
        install_model(args.model, settings.models_dir)
    name = f"fashion-{args.model}"
    catalog = Catalog(settings)
    catalog.open(names=[name])
    try:
        if name not in catalog:
            catalog.create(name, args.model)
        index, classifier = catalog.store(name), catalog.index_model(name)
        start = time.perf_counter()
        add_fashion(index, classifier, limit=args.limit, progress=True)
        logger.info("index %r holds %d items (%.0f s)", name, index.count(), time.perf_counter() - start)
        start = time.perf_counter()
        report = evaluate_store(index, classifier.spec, EvaluationOptions(num_queries=args.num_queries), progress=True)
        report["config"]["command"] = command
        logger.info("evaluated in %.0f s", time.perf_counter() - start)
        write_report(report, args.out)
        if not args.no_logits:
            items = load_items(index)
            save_logits(args.out / "logits.npz", items.ids, items.logits, classifier.spec.sha256, command)
    finally:
        catalog.close()


if __name__ == "__main__":
    main()
