"""`POST /v1/evaluate` over HTTP and `logitsearch evaluate` in-process, on the trained default index."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from evaluation.options import EvaluationOptions
from evaluation.report import evaluate_store
from service.app import create_app
from service.cli import main
from service.config import Settings
from service.routes import evaluate as evaluate_route
from tests.helpers import RANKING_KEYS

SMALL: dict[str, Any] = {"num_queries": 20, "temperatures": [1.0, 8.0], "k": 5, "metrics": ["l2", "kl"], "seed": 3}


def test_evaluate_returns_the_report(client: TestClient, settings: Settings) -> None:
    response = client.post("/v1/evaluate", json=SMALL)
    assert response.status_code == 200
    body = response.json()
    assert [(r["metric"], r["temperature"]) for r in body["ranking"]] == [
        ("l2", 1.0),
        ("kl", 1.0),
        ("l2", 8.0),
        ("kl", 8.0),
    ]
    assert all(RANKING_KEYS <= row.keys() for row in body["ranking"])
    assert {(r["a"], r["b"]) for r in body["pairwise"]} >= {("ce", "tri"), ("euclidean", "euclidean_centered")}
    assert isinstance(body["separability"], list)
    config = body["config"]
    assert config["model"]["name"] == "digits-cnn" and len(config["model"]["sha256"]) == 64
    assert config["index"] == {"name": "default", "count": 1797, "dim": 10}
    assert config["sampled"]["num_ranked_items"] == 1797 - 20 and config["seed"] == 3
    assert 0.9 < body["ranking"][0]["label_precision_at_k"] <= 1.0  # the digits model is accurate
    assert body["ranking"][1]["spearman_mean"] == pytest.approx(1.0)  # KL ranks like CE for a fixed query
    catalog = client.app.state.catalog  # type: ignore[attr-defined]  # the service owns the index
    spec = catalog.index_model("default").spec
    expected = evaluate_store(catalog.store("default"), spec, EvaluationOptions(**SMALL))
    assert body == json.loads(json.dumps(expected))  # the same JSON as report.json


def test_evaluate_with_caller_logits(client: TestClient) -> None:
    logits = [[5.0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 4.0, 1.0, 0, 0, 0, 0, 0]]
    response = client.post("/v1/evaluate", json={"logits": logits, "temperatures": [2.0], "metrics": ["l2"]})
    assert response.status_code == 200
    row = response.json()["ranking"][0]
    assert row["num_queries"] == 2 and row["label_precision_at_k"] is None


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"metrics": ["l2", "hamming"]}, "unknown metric 'hamming'"),
        ({"metrics": []}, "metrics"),
        ({"temperatures": [1.0, 0.0]}, "temperatures"),
        ({"temperatures": [-1.0]}, "temperatures"),
        ({"temperatures": [float(t) for t in range(1, 18)]}, "temperatures"),
        ({"k": 0}, "k"),
        ({"k": 1001}, "k"),
        ({"num_queries": 0}, "num_queries"),
        ({"num_queries": 501}, "LOGITSEARCH_MAX_EVAL_QUERIES"),
        ({"num_items": 20_001}, "LOGITSEARCH_MAX_EVAL_ITEMS"),
        ({"seed": -1}, "seed"),
        ({"logits": [[1.0, 2.0]]}, "10-dimensional"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_evaluate_refuses_bad_or_too_large_requests(client: TestClient, change: dict[str, Any], where: str) -> None:
    response = client.post("/v1/evaluate", json=SMALL | change)
    assert response.status_code == 422
    assert where in json.dumps(response.json()["detail"])


def test_evaluate_refuses_k_above_the_ranked_items(client: TestClient) -> None:
    response = client.post("/v1/evaluate", json=SMALL | {"num_items": 50, "k": 60})
    assert response.status_code == 422
    assert "k must be between 1 and the number of ranked items (50" in response.json()["detail"]


def test_evaluate_refuses_more_work_than_configured(settings: Settings) -> None:
    with TestClient(create_app(settings.model_copy(update={"max_eval_work": 20 * 2 * 1000}))) as client:
        response = client.post("/v1/evaluate", json=SMALL)
    assert response.status_code == 422
    assert "LOGITSEARCH_MAX_EVAL_WORK" in response.json()["detail"]  # 20 queries x 2 temperatures x 1777 items


def test_evaluate_refuses_a_second_run_at_once(client: TestClient) -> None:
    with evaluate_route._ONE_AT_A_TIME:
        response = client.post("/v1/evaluate", json=SMALL)
    assert response.status_code == 429
    assert "already running" in response.json()["detail"]


def test_cli_evaluate_writes_the_report(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["evaluate", "--out", str(out), "--num-queries", "15", "--temperatures", "1,4", "-k", "5"]
    args += ["--metrics", "l2,tri", "--seed", "1", "--num-pairs", "300", "--data-dir", str(settings.data_dir)]
    assert main([*args, "--device", "cpu", "--faiss-gpu", "false"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["options"]["num_queries"] == 15 and report["config"]["temperatures"] == [1.0, 4.0]
    assert [r["metric"] for r in report["ranking"]] == ["l2", "tri", "l2", "tri"]
    assert "# Does L2 follow cross-entropy?" in (out / "report.md").read_text()
    assert (out / "correlation_vs_temperature.png").stat().st_size > 0
    assert (out / "distance_histograms.png").stat().st_size > 0


@pytest.mark.parametrize("command", [["evaluate", "--data-dir", "{data}"], ["compare-training", "--epochs", "1"]])
def test_cli_without_matplotlib_fails_at_once_with_the_install_hint(
    settings: Settings,
    tmp_path: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as in an install without the `eval` extra
    out = tmp_path / "report"
    assert main([*(arg.format(data=settings.data_dir) for arg in command), "--out", str(out)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "pip install 'logit-search[eval]'" in errors[0] and "\n" not in errors[0]
    assert not out.exists()  # nothing was computed or written
