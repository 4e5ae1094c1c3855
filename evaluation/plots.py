"""PNG plots of an evaluation report, drawn with matplotlib's object API on the Agg canvas (no pyplot state)."""

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_DPI = 120


def _figure(width: float = 6.4, height: float = 4.2, columns: int = 1) -> tuple[Figure, list[Any]]:
    figure = Figure(figsize=(width * columns, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(1, columns, i + 1) for i in range(columns)]


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _ranking_series(report: dict[str, Any], field: str) -> dict[str, tuple[list[float], list[float]]]:
    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in report["ranking"]:
        if row[field] is not None:
            xs, ys = series.setdefault(row["metric"], ([], []))
            xs.append(row["temperature"])
            ys.append(row[field])
    return series


def plot_correlation(report: dict[str, Any], path: Path) -> Path:
    """Left: per-query Spearman of each metric with the CE ranking vs T. Right: pairwise Spearman of CE vs T."""
    figure, (left, right) = _figure(columns=2)
    for metric, (xs, ys) in _ranking_series(report, "spearman_mean").items():
        left.plot(xs, ys, marker="o", label=metric)
    left.set(xscale="log", xlabel="temperature T", ylabel="Spearman with CE ranking (mean over queries)")
    left.set_title("Ranking agreement per query")
    for other in ("kl", "js", "tri", "euclidean", "euclidean_centered"):
        rows = [r for r in report["pairwise"] if r["a"] == "ce" and r["b"] == other and r["spearman"] is not None]
        right.plot([r["temperature"] for r in rows], [r["spearman"] for r in rows], marker="o", label=f"ce vs {other}")
    right.set(xscale="log", xlabel="temperature T", ylabel="Spearman over random pairs")
    right.set_title("Pairwise correlation with CE")
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    return _save(figure, path)


def plot_overlap(report: dict[str, Any], path: Path) -> Path:
    """Overlap@k of each metric's top-k with the CE top-k vs T."""
    figure, (axes,) = _figure()
    for metric, (xs, ys) in _ranking_series(report, "overlap_at_k").items():
        axes.plot(xs, ys, marker="o", label=metric)
    axes.set(xscale="log", xlabel="temperature T", ylabel=f"overlap@{report['config']['k']} with CE top-k")
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")
    return _save(figure, path)


def plot_separability(report: dict[str, Any], path: Path) -> Path | None:
    """P(inter > intra) against the training loss, one point per epoch; None without a trajectory."""
    rows = [r for r in report["separability"] if r["loss"] is not None]
    if not rows:
        return None
    figure, (axes,) = _figure()
    axes.plot([r["loss"] for r in rows], [r["p_inter_gt_intra"] for r in rows], marker="o")
    for r in (rows[0], rows[-1]):
        axes.annotate(f"epoch {r['epoch']}", (r["loss"], r["p_inter_gt_intra"]), fontsize="small")
    axes.set(xscale="log", xlabel="training cross-entropy loss", ylabel="P(inter-class > intra-class distance)")
    axes.grid(True, alpha=0.3)
    return _save(figure, path)


def plot_histograms(report: dict[str, Any], path: Path) -> Path | None:
    """Intra- and inter-class L2 distance histograms over the index; None without labeled classes."""
    index = report["separability_index"]
    if index is None:
        return None
    histogram = index["histogram"]
    edges = histogram["edges"]
    figure, (axes,) = _figure()
    for kind in ("intra", "inter"):
        axes.stairs(histogram[kind], edges, fill=True, alpha=0.5, label=f"{kind}-class")
    axes.set(xlabel="L2 distance between logits", ylabel=f"pairs (of {index['num_pairs']})")
    axes.set_title(f"P(inter > intra) = {index['p_inter_gt_intra']:.4f}")
    axes.legend()
    return _save(figure, path)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw every plot the report has data for into ``out_dir``; returns the PNG paths written."""
    paths = [
        plot_correlation(report, out_dir / "correlation_vs_temperature.png"),
        plot_overlap(report, out_dir / "overlap_vs_temperature.png"),
        plot_separability(report, out_dir / "separability_vs_loss.png"),
        plot_histograms(report, out_dir / "distance_histograms.png"),
    ]
    return [path for path in paths if path is not None]
