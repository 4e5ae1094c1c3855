"""The `train` options and `compare-training` subcommand in-process through `main([...])`."""

import json
import logging
from pathlib import Path

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
