"""`logitsearch index --images`: worker decoding, batches committed as they come, and resuming where a run stopped."""

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexes.durable import DurableIndex
from indexes.validation import MAX_THUMBNAIL_BYTES
from models import make_thumbnail
from service.catalog.bootstrap import load_model
from service.cli import main
from service.config import Settings
from tests.helpers import upload_path_logits, write_images


def _open(settings: Settings, name: str) -> DurableIndex:
    classifier = load_model(settings)
    return DurableIndex.open(
        settings.indexes_dir / name, name=name, model_name="digits-cnn", model_sha256=classifier.spec.sha256, dim=10
    )


def _index(settings: Settings, folder: Path, *extra: str) -> int:
    flags = ["--data-dir", str(settings.data_dir), "--device", "cpu", "--faiss-gpu", "false"]
    return main(["index", "--images", str(folder), "--index", "photos", "--batch-size", "4", *flags, *extra])


def test_a_second_run_adds_only_what_is_new_and_rebuild_redoes_all(
    settings: Settings, tmp_path: Path, rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "photos"
    first = write_images(folder / "a", rng, 9)
    assert _index(settings, folder, "--workers", "2") == 0
    index = _open(settings, "photos")
    before = {item.id: item.logits for item in index.iter_items()}
    thumbnails = {item_id: index.thumbnail(item_id) for item_id in before}  # made in the decoding workers
    index.close()
    assert sorted(before) == [f"a/{p.name}" for p in first]
    for path in first:
        assert thumbnails[f"a/{path.name}"] == make_thumbnail(Image.open(path), MAX_THUMBNAIL_BYTES)
    np.testing.assert_allclose(list(before.values()), upload_path_logits(load_model(settings), first), atol=1e-5)

    write_images(folder / "a", rng, 9)  # the same names with new pixels: stored ids are not embedded again
    added = write_images(folder / "b", rng, 3)
    caplog.clear()
    caplog.set_level(logging.INFO, logger="service.catalog.bootstrap")
    assert _index(settings, folder, "--workers", "0") == 0
    assert any("holds 9 of the 12 items already" in r.getMessage() for r in caplog.records)
    index = _open(settings, "photos")
    after = {item.id: item.logits for item in index.iter_items()}
    index.close()
    assert len(after) == 12 and all(np.array_equal(after[key], value) for key, value in before.items())
    np.testing.assert_allclose(
        [after[f"b/{p.name}"] for p in added], upload_path_logits(load_model(settings), added), atol=1e-5
    )

    assert _index(settings, folder, "--rebuild") == 0
    index = _open(settings, "photos")
    rebuilt = {item.id: item.logits for item in index.iter_items()}
    index.close()
    assert not np.allclose(rebuilt["a/000.png"], before["a/000.png"])  # re-embedded from the new pixels


def test_unreadable_files_are_skipped_reported_and_retried_on_the_next_run(
    settings: Settings, tmp_path: Path, rng: np.random.Generator, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "photos"
    paths = write_images(folder, rng, 10)
    good = paths[2].read_bytes()
    paths[2].write_bytes(b"GIF89a broken")
    assert _index(settings, folder) == 2
    error = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"][-1]
    assert "1 of 10 files" in error and "002.png" in error and "\n" not in error
    index = _open(settings, "photos")
    assert index.count() == 9  # every batch but the bad file was stored
    index.close()

    paths[2].write_bytes(good)
    assert _index(settings, folder) == 0
    index = _open(settings, "photos")
    assert index.count() == 10
    index.close()


def test_a_local_dask_cluster_stores_what_one_process_stores_and_resumes(
    settings: Settings, tmp_path: Path, rng: np.random.Generator
) -> None:
    folder = tmp_path / "photos"
    first = write_images(folder / "a", rng, 10)
    (folder / "a" / "broken.png").write_bytes(b"not an image")
    assert _index(settings, folder, "--dask", "local:2") == 2  # the readable ones stored, the broken file named
    index = _open(settings, "photos")
    stored = {item.id: item.logits for item in index.iter_items()}
    thumbnails = {item_id: index.thumbnail(item_id) for item_id in stored}  # made on the workers
    index.close()
    assert sorted(stored) == [f"a/{p.name}" for p in first]
    np.testing.assert_allclose(
        [stored[f"a/{p.name}"] for p in first], upload_path_logits(load_model(settings), first), atol=1e-5
    )
    assert all(thumbnails[f"a/{p.name}"] == make_thumbnail(Image.open(p), MAX_THUMBNAIL_BYTES) for p in first)

    (folder / "a" / "broken.png").unlink()
    added = write_images(folder / "b", rng, 3)
    assert _index(settings, folder, "--dask", "local:1") == 0
    index = _open(settings, "photos")
    after = {item.id: item.logits for item in index.iter_items()}
    index.close()
    assert len(after) == 13 and all(np.array_equal(after[key], value) for key, value in stored.items())
    np.testing.assert_allclose(
        [after[f"b/{p.name}"] for p in added], upload_path_logits(load_model(settings), added), atol=1e-5
    )


@pytest.mark.parametrize("address", ["local:0", "local:two", "127.0.0.1:8786"])
def test_a_dask_address_it_cannot_use_is_refused_with_the_forms_it_takes(
    settings: Settings, tmp_path: Path, rng: np.random.Generator, address: str, caplog: pytest.LogCaptureFixture
) -> None:
    write_images(tmp_path / "photos" / "a", rng, 2)
    assert _index(settings, tmp_path / "photos", "--dask", address) != 0
    assert any("local:N" in record.getMessage() for record in caplog.records)
