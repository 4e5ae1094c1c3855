"""The CLI in-process through `main([...])`: index a folder of images, train a model, settings flags."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from indexes.durable import DurableIndex
from models import load_classifier
from service.catalog.bootstrap import load_model
from service.cli import build_parser, main, settings_from_args
from service.config import Settings
from tests.helpers import modules_after


def _write_folder(root: Path, rng: np.random.Generator) -> None:
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 256, size=(20, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / label / f"{i}.png")


def test_index_folder_of_images(settings: Settings, tmp_path: Path, rng: np.random.Generator) -> None:
    folder = tmp_path / "images"
    _write_folder(folder, rng)
    args = [
        "index",
        "--images",
        str(folder),
        "--index",
        "pets",
        "--data-dir",
        str(settings.data_dir),
        "--device",
        "cpu",
        "--faiss-gpu",
        "false",
    ]
    assert main(args) == 0
    classifier = load_model(settings)
    index = DurableIndex.open(
        settings.data_dir / "indexes" / "pets",
        name="pets",
        model_name="digits-cnn",
        model_sha256=classifier.spec.sha256,
        dim=10,
    )
    items = list(index.iter_items())
    assert [item.id for item in items] == [f"{label}/{i}.png" for label in ("cats", "dogs") for i in range(3)]
    assert items[4].metadata == {"path": "dogs/1.png", "label": "dogs"}
    expected = classifier.logits_from_images([Image.open(folder / "dogs" / "1.png")])[0]
    np.testing.assert_allclose(items[4].logits, expected, atol=1e-5)


def test_index_folder_labels_are_numbers_where_the_folder_name_is_one(
    settings: Settings, tmp_path: Path, rng: np.random.Generator
) -> None:
    folder = tmp_path / "images"
    for label in ("7", "07", "cats"):
        (folder / label).mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, size=(8, 8), dtype=np.uint8)).save(folder / label / "a.png")
    assert main(["index", "--images", str(folder), "--data-dir", str(settings.data_dir), "--device", "cpu"]) == 0
    classifier = load_model(settings)
    index = DurableIndex.open(
        settings.indexes_dir / "default",
        name="default",
        model_name="digits-cnn",
        model_sha256=classifier.spec.sha256,
        dim=10,
    )
    try:
        labels = {item.id: item.metadata["label"] for item in index.iter_items() if "/" in item.id}
        assert labels == {"7/a.png": 7, "07/a.png": "07", "cats/a.png": "cats"}
        sevens = index.search(np.zeros((1, 10)), 2000, filter={"label": 7}).neighbors[0]
        assert "7/a.png" in {n.id for n in sevens} and len(sevens) == 1 + 179  # the folder's and the digits' 7s
    finally:
        index.close()


def test_index_refuses_unreadable_file(settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "fake.png").write_bytes(b"not a png")
    assert main(["index", "--images", str(folder), "--index", "broken", "--data-dir", str(settings.data_dir)]) == 2
    assert "fake.png" in caplog.records[-1].getMessage() and "\n" not in caplog.records[-1].getMessage()


def test_train_writes_servable_model(tmp_path: Path) -> None:
    assert main(["train", "--name", "quick", "--arch", "mlp", "--epochs", "2", "--data-dir", str(tmp_path)]) == 0
    classifier = load_classifier(tmp_path / "models", "quick", torch.device("cpu"))
    assert classifier.spec.arch == "mlp" and classifier.spec.training["epochs"] == 2
    assert classifier.logits_from_images([Image.new("L", (8, 8))]).shape == (1, 10)


def test_settings_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGITSEARCH_PORT", "9000")
    monkeypatch.setenv("LOGITSEARCH_MAX_K", "7")
    args = build_parser().parse_args(["serve", "--port", "9100", "--protect-reads"])
    settings = settings_from_args(args)
    assert (settings.port, settings.max_k, settings.protect_reads) == (9100, 7, True)


def _last_error(caplog: pytest.LogCaptureFixture) -> str:
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors, "no error was logged"
    assert "\n" not in errors[-1] and "Traceback" not in errors[-1]
    return errors[-1]


def test_cli_errors_are_one_line_and_exit_2(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = ["--data-dir", str(settings.data_dir)]
    url = "http://127.0.0.1:9"  # the discard port: nothing listens there
    assert main(["search", "--id", "digits-1", "--url", url]) == 2
    assert "cannot reach the service" in _last_error(caplog) and "running at --url?" in _last_error(caplog)
    assert main(["analyse", "uncertain", "--url", url]) == 2
    assert "cannot reach the service" in _last_error(caplog) and "running at --url?" in _last_error(caplog)
    assert main(["search", "--image", str(tmp_path / "missing.png"), "--url", url]) == 2
    assert "missing.png" in _last_error(caplog)
    assert main(["index", "--images", str(tmp_path / "nowhere"), "--index", "ghost", *data]) == 2
    assert "not a folder" in _last_error(caplog)
    assert not (settings.indexes_dir / "ghost").exists()  # no empty index left behind
    assert main(["index", "--index", "Bad Name", *data]) == 2
    assert "index" in _last_error(caplog)


def test_cli_settings_and_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "70000", "--data-dir", str(tmp_path)]) == 2
    message = _last_error(caplog)
    assert "--port (LOGITSEARCH_PORT): Input should be less than or equal to 65535" in message
    assert "pydantic.dev" not in message and "type=" not in message
    with pytest.raises(SystemExit) as raised:
        main(["search", "--logits", "1,two", "--url", "http://127.0.0.1:9"])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--logits" in error and error.startswith("logitsearch search: error:")


def test_cli_help_lists_only_the_commands_options_with_defaults_and_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    helps = {}
    for command in (["train"], ["search"], ["index"], ["indexes", "list"], ["models", "list"], ["serve"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        helps[" ".join(command)] = " ".join(capsys.readouterr().out.split())  # unwrapped
    assert "--port" not in helps["train"] and "--pg-url" not in helps["train"] and "--api-key" not in helps["index"]
    assert "--device {auto,cpu,cuda}" in helps["train"] and "(default: auto; LOGITSEARCH_DEVICE)" in helps["train"]
    assert "--metric {l2," in helps["search"] and "(default: 10)" in helps["search"]
    assert "(default: 256)" in helps["index"] and "--model MODEL" in helps["index"]
    assert "--device" not in helps["indexes list"] and "--device" not in helps["models list"]
    assert "--port PORT" in helps["serve"] and "(default: 8000; LOGITSEARCH_PORT)" in helps["serve"]


def test_cli_refuses_an_index_another_process_owns(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    from service.catalog.registry import Catalog

    holder = Catalog(settings)
    holder.open()  # as a running service holds its indexes
    try:
        assert main(["index", "--rebuild", "--data-dir", str(settings.data_dir), "--device", "cpu"]) == 2
        assert f"in use by process {os.getpid()}" in _last_error(caplog)
        assert holder.store("default").count() == 1797  # the rebuild did not touch it
    finally:
        holder.close()


def test_a_second_serve_on_the_data_dir_exits_at_once_naming_the_first(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from service.cli.serving import hold_data_dir

    monkeypatch.setattr(uvicorn.Server, "run", lambda server: None)  # were it to start, it would return at once
    first = hold_data_dir(settings)  # as the first `serve` does
    try:
        assert main(["serve", "--data-dir", str(settings.data_dir), "--device", "cpu", "--port", "9"]) == 2
        assert f"data directory {settings.data_dir} (served) is in use by process {os.getpid()}" in _last_error(caplog)
    finally:
        first.release()


def test_indexes_list_beside_a_running_service_shows_its_indexes_as_served(
    settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.catalog.registry import Catalog
    from service.cli.serving import hold_data_dir

    owner, service = hold_data_dir(settings), Catalog(settings)
    service.open()  # the data directory and its indexes held as `serve` holds them
    try:
        assert main(["indexes", "list", "--data-dir", str(settings.data_dir)]) == 0
    finally:
        service.close()
        owner.release()
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[:3] == ["default", "digits-cnn", "faiss"], rows
    assert rows[1].endswith(f"served by process {os.getpid()}"), rows
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_train_over_a_model_an_index_is_bound_to_needs_force_and_keeps_the_old_weights(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from service.catalog.registry import Catalog

    weights = settings.models_dir / "digits-cnn.safetensors"
    old = weights.read_bytes()
    train = ["train", "--name", "digits-cnn", "--arch", "mlp", "--epochs", "1", "--data-dir", str(settings.data_dir)]
    assert main(train) == 2
    assert "index 'default' holds its logits" in _last_error(caplog) and "--force" in _last_error(caplog)
    assert weights.read_bytes() == old
    assert main([*train, "--force"]) == 0
    assert weights.read_bytes() != old
    (kept,) = (settings.models_dir / "replaced").iterdir()
    assert (kept / "digits-cnn.safetensors").read_bytes() == old and (kept / "digits-cnn.json").is_file()
    catalog = Catalog(settings)
    catalog.open()  # the index of the old weights is not served with the new ones
    try:
        (status,) = catalog.statuses()
        assert status.reason is not None and "--rebuild" in status.reason
    finally:
        catalog.close()


def test_training_into_a_model_being_trained_is_refused(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    from service.catalog.bootstrap import training_lock

    with training_lock(settings.models_dir, "busy"):
        assert main(["train", "--name", "busy", "--epochs", "1", "--data-dir", str(settings.data_dir)]) == 2
        assert "model 'busy'" in _last_error(caplog) and "in use by process" in _last_error(caplog)
    assert not (settings.models_dir / "busy.safetensors").exists()


HEAVY = {"torch", "numba", "faiss", "sklearn", "scipy", "matplotlib", "indexes", "evaluation", "models", "fastapi"}


@pytest.mark.parametrize(
    "code",
    [
        "from service.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from service.cli import build_parser\nbuild_parser('search').parse_args(['search', '--id', 'x'])",
    ],
)
def test_cli_help_and_search_load_no_library(code: str) -> None:
    loaded = {name.partition(".")[0] for name in modules_after(code)}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & HEAVY)


@pytest.mark.parametrize(
    "command", ["serve", "train", "compare-training", "index", "indexes", "search", "evaluate", "models"]
)
def test_cli_parser_of_one_command_has_the_same_options(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    for parser in (build_parser(), build_parser(command)):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
    full, alone = capsys.readouterr().out.split("usage: logitsearch")[1:]
    assert full == alone and "--" in alone
