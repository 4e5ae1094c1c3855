"""The `train` options and `compare-training` subcommand in-process through `main([...])`."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from models import load_classifier
from service.cli import main

CPU = torch.device("cpu")


def _write_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(("left", "right")):
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 40, size=(8, 8), dtype=np.uint8)
            pixels[:, label * 4 : label * 4 + 4] += 200
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_train_isbe_options_recorded(tmp_path: Path) -> None:
    args = ["train", "--name", "isbe-tanh", "--arch", "mlp", "--loss", "isbe", "--activation", "tanh"]
    args += ["--reduction", "sum", "--label-smoothing", "0.1", "--class-weights", "1,1,1,1,1,1,1,1,1,2"]
    assert main([*args, "--epochs", "2", "--seed", "3", "--data-dir", str(tmp_path)]) == 0
    training = load_classifier(tmp_path / "models", "isbe-tanh", CPU).spec.training
    assert training["loss"] == "isbe" and training["activation"] == "tanh" and training["reduction"] == "sum"
    assert training["label_smoothing"] == 0.1 and training["class_weights"][-1] == 2.0 and training["seed"] == 3
    assert len(training["trajectory"]) == 2 and "p_inter_gt_intra" in training["trajectory"][-1]


def test_train_image_folder_with_cnn_alias(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "images")
    args = ["train", "--name", "sides", "--data", str(folder), "--arch", "cnn", "--loss", "focal", "--gamma", "1"]
    assert main([*args, "--epochs", "3", "--data-dir", str(tmp_path)]) == 0
    spec = load_classifier(tmp_path / "models", "sides", CPU).spec
    assert spec.arch == "digits-cnn" and spec.labels == ("left", "right") and spec.training["gamma"] == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--gamma", "-1"], "gamma"),
        (["--class-weights", "1,2"], "2 class weights for 10 classes"),
        (["--label-smoothing", "1.5"], "label_smoothing"),
        (["--activation", "tanh"], "only with --loss isbe"),
        (["--data", "/nonexistent/folder"], "does not exist"),
    ],
)
def test_train_rejects_bad_options(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, options: list[str], message: str
) -> None:
    with caplog.at_level(logging.ERROR):
        assert main(["train", "--name", "bad", *options, "--data-dir", str(tmp_path)]) == 2
    assert message in caplog.text
    assert not (tmp_path / "models" / "bad.json").exists()


def test_train_unknown_loss_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["train", "--name", "bad", "--loss", "hinge", "--data-dir", str(tmp_path)])
    assert raised.value.code == 2


def test_compare_training_writes_results(tmp_path: Path) -> None:
    out = tmp_path / "compare"
    args = ["compare-training", "--out", str(out), "--seeds", "0,1", "--epochs", "1", "--archs", "mlp"]
    assert main([*args, "--variants", "ce-mean,isbe-softmax"]) == 0
    rows = json.loads((out / "results.json").read_text())
    assert [(row["variant"], row["seed"]) for row in rows] == [
        ("ce-mean", 0),
        ("isbe-softmax", 0),
        ("ce-mean", 1),
        ("isbe-softmax", 1),
    ]
    for key in ("arch", "loss", "activation", "seed", "test_accuracy", "forward_s", "loss_s", "backward_s"):
        assert all(key in row for row in rows)
    assert rows[0]["arch"] == "mlp" and rows[1]["loss"] == "isbe" and rows[1]["activation"] == "softmax"
    markdown = (out / "results.md").read_text()
    assert "| mlp | isbe-softmax |" in markdown and "compare-training" in markdown
    assert all((out / f"{name}.png").stat().st_size > 1000 for name in ("accuracy", "timing", "trajectories"))


def test_compare_training_rejects_unknown_variant(tmp_path: Path) -> None:
    assert main(["compare-training", "--out", str(tmp_path), "--variants", "ce-max"]) == 2
    assert not (tmp_path / "results.json").exists()


def test_train_image_folder_applies_image_limits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = _write_folder(tmp_path / "images")
    args = ["train", "--name", "limited", "--data", str(folder), "--max-image-pixels", "10"]
    with caplog.at_level(logging.ERROR):
        assert main([*args, "--data-dir", str(tmp_path)]) == 2
    assert "left/0.png" in caplog.text and "limit is 10" in caplog.text


class _Bars:
    """Stands in for tqdm and records every bar: its options, and the units it advanced by."""

    def __init__(self) -> None:
        self.bars: list[dict[str, Any]] = []

    def __call__(self, iterable: Any = None, **options: Any) -> "_Bars._Bar":
        bar = _Bars._Bar(iterable, options)
        self.bars.append(bar.__dict__)
        return bar

    class _Bar:
        def __init__(self, iterable: Any, options: dict[str, Any]) -> None:
            self.iterable, self.options, self.done = iterable, options, 0

        def __iter__(self) -> Iterator[Any]:
            for item in self.iterable:
                yield item
                self.done += 1

        def update(self, n: int = 1) -> None:
            self.done += n

        def set_postfix(self, **values: Any) -> None:
            pass

        def close(self) -> None:
            pass


def test_train_shows_progress_within_epochs_on_a_terminal_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--name", "quick", "--arch", "mlp", "--epochs", "2", "--batch-size", "100"]
    assert main([*args, "--data-dir", str(tmp_path / "plain")]) == 0
    assert "%|" not in capsys.readouterr().err  # stderr is not a terminal here: no bar
    bars = _Bars()
    monkeypatch.setattr("models.loop.tqdm", bars)
    assert main([*args, "--data-dir", str(tmp_path / "recorded")]) == 0
    (bar,) = bars.bars
    batches = -(-1437 // 100)  # the digits' train split in batches of 100
    assert bar["options"]["total"] == bar["done"] == 2 * batches and bar["options"]["disable"] is None


def test_compare_training_shows_progress_over_and_within_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs, steps = _Bars(), _Bars()
    monkeypatch.setattr("models.comparison.tqdm", runs)
    monkeypatch.setattr("models.loop.tqdm", steps)
    args = ["compare-training", "--out", str(tmp_path / "out"), "--seeds", "0", "--epochs", "1", "--archs", "mlp"]
    assert main([*args, "--variants", "ce-mean,isbe-softmax"]) == 0
    (bar,) = runs.bars
    assert bar["done"] == 2 and bar["options"]["disable"] is None
    shown = [bar for bar in steps.bars if bar["options"]["disable"] is None]  # not the untimed warm-up
    assert len(shown) == 2 and all(bar["done"] == bar["options"]["total"] > 0 for bar in shown)
