"""The Markdown rendering of an evaluation report: configuration, tables per section, plots and notes."""

from collections.abc import Sequence
from typing import Any

#: A pairwise Spearman is flagged when more than this share of its pairs still tie on one side.
TIES_FLAG = 0.01


def _number(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _by_temperature(report: dict[str, Any], field: str, spread: str | None) -> list[str]:
    """A temperature x metric table of one ranking statistic (mean ± spread)."""
    metrics = report["config"]["metrics"]
    cells = {(r["metric"], r["temperature"]): r for r in report["ranking"]}
    rows = []
    for t in report["config"]["temperatures"]:
        row = [f"{t:g}"]
        for m in metrics:
            r = cells[m, t]
            row.append(_number(r[field]) + (f" ± {_number(r[spread])}" if spread and r[spread] is not None else ""))
        rows.append(row)
    return _table(["T", *metrics], rows)


def _ranking_section(report: dict[str, Any]) -> list[str]:
    k = report["config"]["k"]
    header = ["metric", "T", "Spearman", "Kendall", f"overlap@{k}", f"recall@{k}", f"nDCG@{k}", f"label P@{k}"]
    fields = ("spearman_mean", "kendall_mean", "overlap_at_k", "recall_at_k", "ndcg_at_k", "label_precision_at_k")
    rows = [[r["metric"], f"{r['temperature']:g}", *(_number(r[f]) for f in fields)] for r in report["ranking"]]
    reference = [
        [f"{r['temperature']:g}", _number(r["label_precision_at_k"]), _number(r["ce_top_k_below_resolution"], 2)]
        for r in report["reference"]
    ]
    return [
        "## Ranking agreement with cross-entropy",
        "",
        f"Queries: {report['config']['sampled']['queries']}.",
        "",
        "Per-query Spearman correlation with the CE ranking (mean ± std over queries):",
        "",
        *_by_temperature(report, "spearman_mean", "spearman_std"),
        "",
        f"Overlap@{k} with the CE top-{k} (mean ± std):",
        "",
        *_by_temperature(report, "overlap_at_k", "overlap_at_k_std"),
        "",
        "All statistics (means):",
        "",
        *_table(header, rows),
        "",
        f"The CE ranking itself: label precision@{k}, and the share of queries whose {k}-th CE value is below "
        "1e-300 nats, past the guaranteed precision of the divergences (top-k statistics there may reflect ties):",
        "",
        *_table(["T", f"label P@{k}", "CE top-k below resolution"], reference),
        "",
    ]


def _pairwise_section(report: dict[str, Any]) -> list[str]:
    temperatures = report["config"]["temperatures"]
    cells = {(r["a"], r["b"], r["temperature"]): r for r in report["pairwise"]}
    pairs = list(dict.fromkeys((r["a"], r["b"]) for r in report["pairwise"]))
    rows = [
        [
            f"{a} / {b}",
            *(
                f"{_number(cells[a, b, t]['pearson'], 2)} / {_number(cells[a, b, t]['spearman'], 2)}"
                + ("*" if cells[a, b, t].get("spearman_ties", 0.0) > TIES_FLAG else "")
                for t in temperatures
            ),
        ]
        for a, b in pairs
    ]
    return [
        "## Pairwise correlations between measures (Connor et al.)",
        "",
        f"Pearson / Spearman over {report['config']['sampled']['pairwise_pairs']} random item pairs, by temperature:",
        "",
        *_table(["measures", *(f"T={t:g}" for t in temperatures)], rows),
        "",
        "js and tri are ranked by their true order where they saturate in float64 (complements in log space). "
        f"\\* marks a Spearman over pairs of which more than {TIES_FLAG:.0%} still tie on one side.",
        "",
    ]


def _separability_section(report: dict[str, Any]) -> list[str]:
    lines = ["## Separability (Das & Chaudhuri)", ""]
    trajectory = report["separability"]
    if trajectory:
        rows = [[str(r["epoch"]), _number(r["loss"], 4), _number(r["p_inter_gt_intra"], 4)] for r in trajectory]
        lines += _table(["epoch", "train loss", "P(inter > intra)"], rows) + [""]
    else:
        lines += ["The served model's spec has no per-epoch separability trajectory.", ""]
    index = report["separability_index"]
    if index is not None:
        lines += [
            f"On the index ({index['num_items']} labeled items, {index['num_pairs']} pairs of each kind): "
            f"P(inter > intra) = {_number(index['p_inter_gt_intra'], 4)}, mean intra-class distance "
            f"{_number(index['intra_mean'])}, mean inter-class distance {_number(index['inter_mean'])}.",
            "",
        ]
    return lines


def render_markdown(report: dict[str, Any], plots: Sequence[str]) -> str:
    """The report as Markdown; ``plots`` are PNG file names next to it, embedded in order."""
    config = report["config"]
    primary = report["primary_metric"]
    lines = [
        "# Does L2 follow cross-entropy?",
        "",
        f"Model `{config['model']['name']}` (sha256 `{config['model']['sha256'][:12]}`), index "
        f"`{config['index']['name']}` ({config['index']['count']} items), seed {config['seed']}, k = {config['k']}.",
        "",
        f"Primary metric `{primary['name']}` = {_number(primary['value'])}.",
        "",
        *_ranking_section(report),
        *_pairwise_section(report),
        *_separability_section(report),
        "## Plots",
        "",
        *(f"![{name}]({name})" for name in plots),
        "",
        "## Notes",
        "",
        *(f"- {note}" for note in report["notes"]),
    ]
    return "\n".join(lines) + "\n"
