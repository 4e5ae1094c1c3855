"""The training comparison's outputs: ``results.json`` (one row per run), ``results.md`` (a summary table) and plots."""

import json
import logging
import os
import platform
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from .comparison import BASELINE, ComparisonConfig, arch_label

logger = logging.getLogger(__name__)

PHASES = ("forward_s", "loss_s", "backward_s")
_PHASE_NAMES = ("forward", "loss", "backward")


def write_report(rows: list[dict[str, Any]], config: ComparisonConfig, out_dir: Path, command: str = "") -> list[Path]:
    """Write ``results.json``, ``results.md`` and PNG plots (matplotlib, Agg backend) to ``out_dir``.

    Args:
        rows: Output of ``run_comparison``.
        config: What was compared (for the header).
        out_dir: Created if missing.
        command: The command line that produced the rows, quoted in the Markdown.

    Returns:
        The paths written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    summary = summarize_runs(rows)
    md_path.write_text(_markdown(summary, config, command) + _across_models(rows), encoding="utf-8")
    paths = [json_path, md_path, *_plot(summary, out_dir)]
    logger.info("wrote %s", ", ".join(str(p) for p in paths))
    return paths


def summarize_runs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate runs per (arch, variant), in first-seen order.

    Args:
        rows: Run rows (``run_comparison``).

    Returns:
        One dict per (arch, variant): ``arch``, ``variant``, ``runs``, ``accuracy_mean``/``accuracy_std`` (sample
        std, 0 for one run), mean seconds per run of each phase and ``total_s`` (forward + loss + backward), the
        timing fields of ``summarize_timing``, ``spearman_mean``/``spearman_std``, ``separability_mean`` and
        ``trajectory`` (mean test accuracy per epoch).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["arch"], row["variant"]].append(row)
    summary = []
    for (arch, variant), runs in groups.items():
        summary.append(
            {
                "arch": arch,
                "variant": variant,
                "runs": len(runs),
                **_mean_std("accuracy", [r["test_accuracy"] for r in runs]),
                **{phase: float(np.mean([r[phase] for r in runs])) for phase in PHASES},
                "total_s": float(np.mean([_total(r) for r in runs])),
                **summarize_timing(runs, groups.get((arch, BASELINE), [])),
                **_mean_std("spearman", [r["l2_ce_spearman"] for r in runs]),
                "separability_mean": float(np.mean([r["p_inter_gt_intra"] for r in runs])),
                "trajectory": np.mean([r["trajectory"] for r in runs], axis=0).tolist(),
            }
        )
    return summary


def separability_against_loss(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Das & Chaudhuri across trained models: Spearman and Pearson between each run's P(inter > intra) and its test
    cross-entropy, over every run and per arch (runs recorded before `test_ce` are left out).

    Returns:
        ``[{"runs": "all" | arch, "n", "spearman", "pearson"}]``; empty when fewer than three runs have both.
    """
    usable = [r for r in rows if r.get("test_ce") is not None and r.get("p_inter_gt_intra") is not None]
    groups = {
        "all": usable,
        **{arch: [r for r in usable if r["arch"] == arch] for arch in dict.fromkeys(r["arch"] for r in usable)},
    }
    result = []
    for name, runs in groups.items():
        if len(runs) < 3:
            continue
        p = np.array([r["p_inter_gt_intra"] for r in runs])
        ce = np.array([r["test_ce"] for r in runs])
        result.append(
            {"runs": name, "n": len(runs), "spearman": float(spearmanr(p, ce)[0]), "pearson": float(pearsonr(p, ce)[0])}
        )
    return result


def _across_models(rows: list[dict[str, Any]]) -> str:
    found = separability_against_loss(rows)
    if not found:
        return ""
    lines = [
        "",
        "Das & Chaudhuri across the trained models: correlation between each run's P (inter-class L2 > intra-class "
        "L2, test split) and its test cross-entropy (the paper predicts larger P at lower loss: a negative "
        "correlation).",
        "",
        "| runs | n | Spearman(P, test CE) | Pearson(P, test CE) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {arch_label(r['runs']) if r['runs'] != 'all' else 'all'} | {r['n']} | {r['spearman']:.3f} | {r['pearson']:.3f} |"
        for r in found
    ]
    return "\n".join(lines) + "\n"


def summarize_timing(runs: list[dict[str, Any]], baseline: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-step timing of one variant's runs, against the baseline's runs of the same arch.

    Args:
        runs: Rows of one (arch, variant).
        baseline: Rows of ``ce-mean`` for the same arch (may be empty).

    Returns:
        ``{"forward_ms", "loss_ms", "backward_ms", "step_ms"}``: means over runs of each run's median milliseconds
        per step (``step_ms`` of forward + loss + backward); ``delta_pct``: paired per seed, the run's ``step_ms``
        relative to the baseline's in %, as ``{"delta_mean", "delta_std"}``, or None; ``delta_best_pct``: the
        fastest run's ``step_ms`` relative to the baseline's fastest, in % (the ``timeit`` convention; the minimum
        is the run least disturbed by other processes), or None.
    """
    step_ms = [r["step_ms_median"] for r in runs]
    by_seed = {r["seed"]: r["step_ms_median"] for r in baseline}
    deltas = [100.0 * (r["step_ms_median"] / by_seed[r["seed"]] - 1.0) for r in runs if r["seed"] in by_seed]
    best = 100.0 * (min(step_ms) / min(by_seed.values()) - 1.0) if by_seed else None
    return {
        **{f"{phase}_ms": float(np.mean([r[f"{phase}_ms_median"] for r in runs])) for phase in _PHASE_NAMES},
        "step_ms": float(np.mean(step_ms)),
        "delta_pct": _mean_std("delta", deltas) if deltas else None,
        "delta_best_pct": best,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return platform.machine()


def _total(row: dict[str, Any]) -> float:
    return float(sum(row[phase] for phase in PHASES))


def _mean_std(prefix: str, values: list[float]) -> dict[str, float]:
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {f"{prefix}_mean": float(np.mean(values)), f"{prefix}_std": std}


def _markdown(summary: list[dict[str, Any]], config: ComparisonConfig, command: str) -> str:
    lines = [
        "# Training variants: accuracy, time per phase, L2-versus-CE agreement",
        "",
        f"Data `{config.data}`, {config.epochs} epochs, seeds {list(config.seeds)}, AdamW lr 1e-3, batch 64, "
        f"1 torch thread, torch {torch.__version__}, {_cpu_name()}." + (f" Command: `{command}`." if command else ""),
        "",
        "Per-step columns are milliseconds per optimiser step, the median over the run's steps (which resists load "
        "spikes from other processes), mean over seeds; s/run is forward + loss + backward summed over the run. "
        f"Δ paired is the step time (f+l+b) relative to `{BASELINE}` of the same arch and seed, mean ± std over "
        f"seeds; Δ best compares the fastest seed with the fastest `{BASELINE}` seed. ρ is the mean per-query "
        "Spearman correlation between L2 and CE over the test split's logits; P is P(inter-class L2 > intra-class "
        "L2) on the test split.",
        "",
        "| arch | variant | test accuracy | forward ms | loss ms | backward ms | s/run | Δ paired | Δ best | ρ(L2, CE) | P |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        delta, best = s["delta_pct"], s["delta_best_pct"]
        delta_text = "—" if delta is None else f"{delta['delta_mean']:+.1f} ± {delta['delta_std']:.1f} %"
        lines.append(
            f"| {arch_label(s['arch'])} | {s['variant']} | {s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} "
            f"| {s['forward_ms']:.3f} | {s['loss_ms']:.3f} | {s['backward_ms']:.3f} | {s['total_s']:.2f} "
            f"| {delta_text} | {'—' if best is None else f'{best:+.1f} %'} "
            f"| {s['spearman_mean']:.3f} ± {s['spearman_std']:.3f} | {s['separability_mean']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _plot(summary: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Accuracy, phase times and accuracy-per-epoch figures, one panel per architecture."""
    import matplotlib  # dev extra; imported here so that training never needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(dict.fromkeys(s["arch"] for s in summary))
    paths = []
    for name, draw in (("accuracy", _draw_accuracy), ("timing", _draw_timing), ("trajectories", _draw_trajectories)):
        figure, axes = plt.subplots(1, len(archs), figsize=(6.5 * len(archs), 4.5), squeeze=False)
        for axis, arch in zip(axes[0], archs, strict=True):
            draw(axis, [s for s in summary if s["arch"] == arch])
            axis.set_title(f"{arch_label(arch)}: {name}")
        figure.tight_layout()
        paths.append(out_dir / f"{name}.png")
        figure.savefig(paths[-1], dpi=110)
        plt.close(figure)
    return paths


def _draw_accuracy(axis: Any, summary: list[dict[str, Any]]) -> None:
    names = [s["variant"] for s in summary]
    axis.bar(names, [s["accuracy_mean"] for s in summary], yerr=[s["accuracy_std"] for s in summary], capsize=3)
    low = min(s["accuracy_mean"] - s["accuracy_std"] for s in summary)
    axis.set_ylim(max(0.0, low - 0.02), 1.0)
    axis.set_ylabel("test accuracy (mean ± std)")
    _rotate_labels(axis)


def _draw_timing(axis: Any, summary: list[dict[str, Any]]) -> None:
    names = [s["variant"] for s in summary]
    bottom = np.zeros(len(summary))
    for phase in _PHASE_NAMES:
        heights = np.array([s[f"{phase}_ms"] for s in summary])
        axis.bar(names, heights, bottom=bottom, label=phase)
        bottom += heights
    axis.set_ylabel("ms per step (median over steps, mean over seeds)")
    axis.legend()
    _rotate_labels(axis)


def _rotate_labels(axis: Any) -> None:
    for label in axis.get_xticklabels():
        label.set_rotation(60)
        label.set_horizontalalignment("right")


def _draw_trajectories(axis: Any, summary: list[dict[str, Any]]) -> None:
    for s in summary:
        epochs = np.arange(1, len(s["trajectory"]) + 1)
        axis.plot(epochs, s["trajectory"], label=s["variant"], linestyle="--" if "isbe" in s["variant"] else "-")
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy (mean over seeds)")
    axis.legend(fontsize=7, ncol=2)
