"""Embedding across a Dask cluster: each worker holds the model once and embeds whole batches sent to it.

`logitsearch index --images DIR --dask ADDRESS` uses this. The client sends the model to every worker once
(`Client.scatter(..., broadcast=True)`), then one task per batch: a small slice of the source (paths, or pixels), never
the whole dataset. Workers put the model on their GPU when they have one. Results come back as they finish (not in
dataset order: each carries its positions) while at most a few tasks per worker are in flight, so neither the
scheduler nor the client holds more than a window of logits. A worker that dies takes its tasks with it and the
scheduler runs them elsewhere; a task that raises is retried twice before the run fails naming it.

This module imports `distributed` (the `dask` extra): import it only to use a cluster. Workers must be able to import this package (the same version) and read the images' paths: a shared filesystem, as
usual with Dask. Nothing here needs a GPU; `local:N` starts N worker processes on this machine.
"""

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from distributed import Client, LocalCluster, as_completed

from .classifier import Classifier
from .errors import ModelError
from .loader import EmbeddedBatch, ImageSource, Precision, embed_dataset

logger = logging.getLogger(__name__)

#: Tasks in flight per worker thread: enough to keep each busy while a result travels back, few enough to bound memory.
TASKS_PER_THREAD = 2
#: Times a task that raised is run again (on any worker) before the run fails.
RETRIES = 2
LOCAL_PREFIX = "local:"

# The model as each worker process holds it on its own device, by the weights' hash: moved there once per process.
_ON_DEVICE: dict[str, Classifier] = {}


@contextmanager
def dask_client(address: str, timeout_s: float = 10.0) -> Iterator[Client]:
    """A Dask client for `address`: a scheduler's `tcp://HOST:PORT`, or `local:N` for N worker processes here.

    Raises:
        ModelError: For an address that is neither, N below 1, or no scheduler answering.
    """
    if address.startswith(LOCAL_PREFIX):
        count = address.removeprefix(LOCAL_PREFIX)
        if not (count.isascii() and count.isdigit() and int(count) >= 1):
            raise ModelError(f"--dask {address!r}: give local:N with N >= 1 worker processes, e.g. local:2")
        # One thread per worker: torch already uses the cores it is given; no dashboard (no web port to claim).
        with (
            LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    if "://" not in address:
        raise ModelError(f"--dask {address!r}: give the scheduler's address, tcp://HOST:PORT, or local:N")
    try:
        client = Client(address, timeout=f"{timeout_s}s")
    except OSError as exc:
        raise ModelError(f"--dask {address}: no Dask scheduler answers there ({exc}); start one or check it") from exc
    with client:
        yield client


def embed_on_cluster(
    client: Client,
    classifier: Classifier,
    source: ImageSource,
    batch_size: int = 256,
    precision: Precision = "fp32",
) -> Iterator[EmbeddedBatch]:
    """Yield the logits of `source` batch by batch, embedded by the workers of `client`, as they finish.

    Batches come in completion order; each one's `positions` are positions in `source`. Unreadable files come back
    as `errors`, as from `embed_dataset`.

    Raises:
        ModelError: For a batch size below 1, no workers, or a batch that failed on `RETRIES + 1` workers.
    """
    if batch_size < 1:
        raise ModelError(f"batch_size must be >= 1, got {batch_size}")
    threads = sum(client.nthreads().values())
    if threads == 0:
        raise ModelError("the Dask cluster has no workers; start some (dask worker SCHEDULER_ADDRESS)")
    portable = Classifier(copy.deepcopy(classifier.module).cpu(), classifier.spec, torch.device("cpu"))
    [model] = client.scatter([portable], broadcast=True)
    starts = iter(range(0, len(source), batch_size))

    def submit(start: int) -> Any:
        part = source.part(start, min(start + batch_size, len(source)))
        return client.submit(_embed_part, model, part, start, precision, retries=RETRIES, pure=False)

    window = as_completed([submit(start) for _, start in zip(range(TASKS_PER_THREAD * threads), starts, strict=False)])
    for future in window:
        try:
            batch: EmbeddedBatch = future.result()
        except Exception as exc:  # the task's own error, after its retries
            raise ModelError(f"a batch failed on the Dask cluster after {RETRIES} retries: {exc}") from exc
        finally:
            future.release()
        start = next(starts, None)
        if start is not None:
            window.add(submit(start))
        yield batch


def _embed_part(model: Classifier, part: ImageSource, start: int, precision: Precision) -> EmbeddedBatch:
    """On a worker: the logits of `part` (one batch), positions shifted by `start` into the whole source."""
    classifier = _on_device(model)
    [batch] = embed_dataset(classifier, part, len(part), workers=0, precision=precision)  # one batch: all of it
    return EmbeddedBatch(batch.positions + start, batch.logits, batch.errors, batch.thumbnails)


def _on_device(model: Classifier) -> Classifier:
    """This worker's copy of `model` on its GPU when it has one (moved once per process), else on its CPU."""
    key = model.spec.sha256 or model.spec.name
    held = _ON_DEVICE.get(key)
    if held is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        held = _ON_DEVICE[key] = Classifier(model.module.to(device), model.spec, device)
        logger.info("worker holds model %r on %s", model.spec.name, device)
    return held
