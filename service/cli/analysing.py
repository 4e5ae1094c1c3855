"""`logitsearch analyse KIND`: run an analysis on a running service's index and print it as a table."""

import argparse
import json
import logging
from typing import Any

from ..schemas import ANALYSIS_KINDS

logger = logging.getLogger(__name__)


def add_analyse_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=ANALYSIS_KINDS, help="the analysis")
    parser.add_argument("--index", help="the index (default: the service's default index)")
    parser.add_argument(
        "--filter", type=json.loads, help='the items analysed, a JSON filter, e.g. \'{"split": "test"}\''
    )
    parser.add_argument("--temperature", type=float, help="softmax temperature T (default 1)")
    parser.add_argument("--limit", type=int, help="rows to print (default 100)")
    parser.add_argument("--max-items", type=int, help="items read at most (default 100000)")
    parser.add_argument("--label-field", help="label-issues, confusion: the metadata field of the given class")
    parser.add_argument("--metric", help="label-issues, near-duplicates, distance-matrix: the measure (default js)")
    parser.add_argument("-k", type=int, help="label-issues, near-duplicates: neighbours per item (default 10)")
    parser.add_argument("--threshold", type=float, help="near-duplicates: the largest value of a pair")
    parser.add_argument("--by", choices=["confidence", "margin", "entropy"], help="uncertain: the ranking")
    parser.add_argument("--ids", type=lambda text: text.split(","), help="distance-matrix: comma-separated ids")
    parser.add_argument("--target", type=float, help="calibration: the overlap@10 with CE to reach (default 0.9)")
    parser.add_argument("--queries", type=int, help="calibration: stored items sampled as queries (default 100)")
    parser.add_argument("--json", action="store_true", help="print the answer as JSON instead of a table")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service")
    parser.add_argument("--api-key", help="the service's API key, when it has one")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")


_OPTIONS = ("filter", "temperature", "limit", "max_items", "label_field", "metric", "k", "threshold", "by", "ids",
            "target", "queries")  # fmt: skip


def analyse_index(args: argparse.Namespace, out: Any) -> int:
    from ..client import NO_RETRY, Client

    options = {name: getattr(args, name) for name in _OPTIONS}
    with Client(args.url, api_key=args.api_key, timeout=args.timeout, retry=NO_RETRY) as client:
        answer = client.analyse(args.kind, index=args.index, **options)
    if args.json:
        out.write(answer.model_dump_json(indent=2) + "\n")
        return 0
    out.write(f"{answer.kind} at T = {answer.temperature:g} over {answer.read} items\n")
    for line in _table(answer.kind, answer.rows, answer.summary):
        out.write(line + "\n")
    return 0


def _table(kind: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    if kind == "calibration":
        temperatures = summary["temperatures"]
        head = f"{'metric':<12} {'reaches':>8} {'95% interval':>18}  " + " ".join(f"{t:>6g}" for t in temperatures)
        lines = [
            f"overlap@10 with the exact CE top-10 on {len(summary['queries'])} items; target {summary['target']}",
            head,
        ]
        for row in rows:
            low, high = row["interval"]
            reach = "never" if row["reaches_at"] is None else f"{row['reaches_at']:.3g}"
            interval = f"{_g(low)} - {_g(high, 'never')}"
            lines.append(
                f"{row['metric']:<12} {reach:>8} {interval:>18}  " + " ".join(f"{v:6.3f}" for v in row["overlap"])
            )
        return lines
    if kind == "near-duplicates":
        lines = [
            f"{summary['pairs']} pairs with {summary['metric']} <= {summary['threshold']:g}, {len(summary['groups'])} groups"
        ]
        return [*lines, *(f"{row['distance']:>12.3g}  {row['id']}  {row['other']}" for row in rows)]
    if kind == "confusion":
        lines = [f"accuracy {summary['accuracy']:.4f} over {summary['labelled']} labelled items"]
        return [*lines, *(
            f"{_name(row, 'label'):>12} -> {_name(row, 'predicted'):<12} {row['count']:>7}  {', '.join(row['typical'])}"
            for row in rows
        )]  # fmt: skip
    if kind == "distance-matrix":
        ids = summary["ids"]
        return [f"{'':<16}" + " ".join(f"{i[:10]:>10}" for i in ids)] + [
            f"{row['id'][:16]:<16}" + " ".join(f"{v:10.4g}" for v in row["distances"]) for row in rows
        ]
    if kind == "label-issues":
        lines = [f"{summary['issues']} issues among {summary['labelled']} labelled items ({summary['method']})",
                 f"{'rank':>4} {'quality':>8} {'label':>12} -> {'predicted':<12} {'neighbours':>10}  id"]  # fmt: skip
        return [*lines, *(
            f"{rank:>4} {row['score']:8.4f} {_name(row, 'label'):>12} -> {_name(row, 'predicted'):<12} "
            f"{row['neighbour_agreement']:10.2f}  {row['id']}"
            for rank, row in enumerate(rows, 1)
        )]  # fmt: skip
    return [f"{'rank':>4} {'score':>8} {'predicted':<12}  id"] + [
        f"{rank:>4} {row['score']:8.4f} {_name(row, 'predicted'):<12}  {row['id']}" for rank, row in enumerate(rows, 1)
    ]


def _name(row: dict[str, Any], key: str) -> str:
    named = row.get(f"{key}_name") or row.get(f"{key}_label")
    return str(named if named is not None else row[key])


def _g(value: float | None, none: str = "-") -> str:
    return none if value is None else f"{value:.3g}"
