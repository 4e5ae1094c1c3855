"""Approximate structures saved beside an index, so that a restart serves them at once instead of building again.

A build is derived data: the snapshot and the log hold every item. It is saved after its recall is measured, in
`approximate/` of the index directory (written whole in `approximate.tmp/`, then renamed), with the ids and row
hashes of the items it was built over: at start the rows whose logits changed since (their hash differs) are masked,
and rows it never saw are scanned exactly, as after any write. A saved build for other options, or one that cannot
be read, is ignored (and built again).
"""

import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from ..snapshot import fsync_directory
from .options import AnnOptions, FamilyKey
from .recall import Calibration
from .state import Approximate
from .structures import Structure

logger = logging.getLogger(__name__)

DIRECTORY = "approximate"
MANIFEST = "build.json"
FORMAT = 2  # 2: the ce graph links items by Hellinger vectors; recall measured on perturbed rows


def save_build(directory: Path, approximate: Approximate) -> None:
    """Write `approximate` (structures, label ids and hashes, calibrations) to `directory/approximate/`."""
    staging, final, old = directory / f"{DIRECTORY}.tmp", directory / DIRECTORY, directory / f"{DIRECTORY}.old"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    families = []
    for i, ((family, temperature), structure) in enumerate(approximate.structures.items()):
        name = f"structure-{i}.faiss"
        faiss.write_index(structure.index, str(staging / name))
        families.append(
            {
                "family": family,
                "temperature": temperature,
                "file": name,
                "augmented": structure.augmented,
                "build_s": structure.build_s,
                "bytes_per_item": structure.bytes_per_item,
            }
        )
    np.save(staging / "hashes.npy", approximate.label_hashes)
    (staging / "ids.json").write_text(json.dumps(approximate.label_ids))
    manifest = {
        "format": FORMAT,
        "options": approximate.options.to_json(),
        "built_at": approximate.built_at,
        "num_built": approximate.num_built,
        "structures": families,
        "calibrations": [asdict(c) for c in approximate.calibrations.values()],
    }
    (staging / MANIFEST).write_text(json.dumps(manifest))
    for path in staging.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    fsync_directory(staging)
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    fsync_directory(directory)
    shutil.rmtree(old, ignore_errors=True)


def _built_by(options: dict[str, Any]) -> dict[str, Any]:
    """The options a build depends on (not where the originals live, nor what the re-rank reads)."""
    return {key: value for key, value in options.items() if key not in ("originals", "rerank_codec")}


def load_build(directory: Path, options: AnnOptions, gpu_resources: Any = None) -> dict[str, Any] | None:
    """The saved build in `directory/approximate/` for `options`, as the keyword arguments of
    `FaissIndex.install_approximate` (structures, ids, hashes, built_at, calibrations); None when there is none,
    it was built for other options, or it cannot be read. Leftovers of an interrupted save are removed."""
    for leftover in (f"{DIRECTORY}.tmp", f"{DIRECTORY}.old"):
        shutil.rmtree(directory / leftover, ignore_errors=True)
    path = directory / DIRECTORY
    if not (path / MANIFEST).is_file():
        return None
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("format") != FORMAT or _built_by(manifest["options"]) != _built_by(options.to_json()):
            logger.info("%s holds a build for other options: building again", path)
            return None
        structures: dict[FamilyKey, Structure] = {}
        for saved in manifest["structures"]:
            index = faiss.read_index(str(path / saved["file"]))
            gpu = None
            if gpu_resources is not None and options.index_type == "ivf":
                gpu = cast(Any, faiss).index_cpu_to_gpu(gpu_resources, 0, index)  # only in faiss-gpu's module
            key = (saved["family"], saved["temperature"])
            structures[key] = Structure(key, index, saved["augmented"], saved["build_s"], saved["bytes_per_item"], gpu)
        ids = json.loads((path / "ids.json").read_text())
        hashes = np.load(path / "hashes.npy")
        calibrations = {}
        for raw in manifest["calibrations"]:
            raw["steps"] = [tuple(step) for step in raw["steps"]]
            calibration = Calibration(**raw)
            calibrations[(calibration.metric, calibration.temperature)] = calibration
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        logger.warning("cannot read the saved build in %s (%s): building again", path, exc)
        return None
    if len(ids) != len(hashes) or len(ids) != manifest["num_built"]:
        logger.warning("the saved build in %s disagrees with itself: building again", path)
        return None
    return {
        "structures": structures,
        "ids": ids,
        "hashes": hashes,
        "built_at": manifest["built_at"],
        "calibrations": calibrations,
    }
