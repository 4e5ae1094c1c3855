"""Tests for models/report.py: aggregation over seeds (paired timing deltas) and the written files."""

import json
from pathlib import Path
from typing import Any

import pytest

from models.comparison import ComparisonConfig
from models.report import summarize_runs, write_report


def _row(variant: str, seed: int, accuracy: float, step_ms: float) -> dict[str, Any]:
    return {
        "arch": "mlp",
        "variant": variant,
        "seed": seed,
        "test_accuracy": accuracy,
        "forward_s": 1.0,
        "loss_s": 0.5,
        "backward_s": 2.0,
        "step_ms_median": step_ms,
        "forward_ms_median": step_ms / 4,
        "loss_ms_median": step_ms / 4,
        "backward_ms_median": step_ms / 2,
        "l2_ce_spearman": 0.9,
        "p_inter_gt_intra": 0.95,
        "trajectory": [accuracy - 0.1, accuracy],
    }


ROWS = [
    _row("ce-mean", 0, 0.90, 10.0),
    _row("isbe-tanh", 0, 0.92, 9.0),
    _row("ce-mean", 1, 0.94, 20.0),
    _row("isbe-tanh", 1, 0.96, 19.0),
]


def test_summarize_runs_mean_std_and_paired_delta() -> None:
    ce, isbe = summarize_runs(ROWS)
    assert (ce["variant"], ce["runs"]) == ("ce-mean", 2)
    assert ce["accuracy_mean"] == pytest.approx(0.92) and ce["accuracy_std"] == pytest.approx(0.0282843, rel=1e-5)
    assert ce["total_s"] == pytest.approx(3.5) and ce["trajectory"] == pytest.approx([0.82, 0.92])
    assert ce["delta_pct"] == {"delta_mean": 0.0, "delta_std": 0.0}
    # Paired per seed: -10 % and -5 %, although the two seeds' times differ by 2x.
    assert isbe["delta_pct"]["delta_mean"] == pytest.approx(-7.5)
    assert isbe["delta_pct"]["delta_std"] == pytest.approx(3.5355, rel=1e-4)
    assert isbe["delta_best_pct"] == pytest.approx(-10.0)  # fastest 9 ms against the baseline's fastest 10 ms
    assert isbe["step_ms"] == pytest.approx(14.0) and isbe["backward_ms"] == pytest.approx(7.0)


def test_summarize_runs_without_baseline() -> None:
    summary = summarize_runs([_row("bce", 0, 0.9, 1.0)])[0]
    assert summary["delta_pct"] is None and summary["delta_best_pct"] is None


def test_write_report_files(tmp_path: Path) -> None:
    config = ComparisonConfig(seeds=(0, 1), archs=("mlp",), variants=("ce-mean", "isbe-tanh"))
    paths = write_report(ROWS, config, tmp_path / "out", command="logitsearch compare-training --out out")
    assert [p.name for p in paths] == ["results.json", "results.md", "accuracy.png", "timing.png", "trajectories.png"]
    assert json.loads(paths[0].read_text()) == ROWS
    markdown = paths[1].read_text()
    assert "| mlp | isbe-tanh | 0.9400 ± 0.0283 |" in markdown and "| -7.5 ± 3.5 % | -10.0 % |" in markdown
    assert "`logitsearch compare-training --out out`" in markdown


def test_separability_against_loss_across_runs(tmp_path: Path) -> None:
    """P against test CE over runs, per arch and overall, against scipy on the same numbers; runs recorded before
    `test_ce` are left out, and the section is written with the report."""
    from scipy.stats import spearmanr

    from models.report import separability_against_loss

    rows = [
        {**_row("ce-mean", seed, 0.9, 10.0), "arch": arch, "p_inter_gt_intra": p, "test_ce": ce}
        for seed, (arch, p, ce) in enumerate(
            [
                ("mlp", 0.95, 0.30),
                ("mlp", 0.97, 0.20),
                ("mlp", 0.96, 0.25),
                ("cnn", 0.99, 0.05),
                ("cnn", 0.98, 0.10),
                ("cnn", 0.985, 0.02),
            ]
        )
    ] + [_row("ce-mean", 9, 0.9, 10.0)]  # no test_ce: an older results.json
    found = {r["runs"]: r for r in separability_against_loss(rows)}
    assert set(found) == {"all", "mlp", "cnn"} and found["all"]["n"] == 6
    assert found["mlp"]["spearman"] == pytest.approx(-1.0)
    p_all = [r["p_inter_gt_intra"] for r in rows[:6]]
    ce_all = [r["test_ce"] for r in rows[:6]]
    assert found["all"]["spearman"] == pytest.approx(spearmanr(p_all, ce_all)[0])
    config = ComparisonConfig(seeds=(0,), archs=("mlp", "cnn"), variants=("ce-mean",))
    write_report(rows, config, tmp_path)
    assert "| all | 6 |" in (tmp_path / "results.md").read_text()
