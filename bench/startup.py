"""Start-up cost of the client and the CLI, as ratios to importing what the client is built on.

Each command runs as a fresh `python` process, round-robin with the others, `--runs` times (after one unmeasured
warm-up each); the table gives each one's median wall time and its ratio to the median of
`python -c "import httpx, pydantic, numpy"` in the same run. `logitsearch` runs as `python -m service.cli` (what
the console script calls), and `search` asks a service that this script starts on 127.0.0.1 over a small index
(a random tiny model of 10 classes, 1,000 items); its start is not measured.

    python -m bench.startup                                   # 7 runs each, the table on stdout
    python -m bench.startup --out bench/results/DATE-startup.md
"""

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import httpx, pydantic, numpy"
#: The targets of issue 30, as ratios to the baseline.
TARGETS = {"import service.client": 2.0, "logitsearch --help": 3.0, "logitsearch search": 3.0}


def run_once(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of `command`, which must succeed."""
    began = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def medians(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Median wall seconds per command, the commands taking turns so that a busy moment hits them alike."""
    for command in commands.values():
        run_once(command, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(run_once(command, env))
    return {name: statistics.median(values) for name, values in times.items()}


def hardware() -> str:
    """The CPU model (lscpu), the cores this process may use, and the Python version."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {len(os.sched_getaffinity(0))} cores available, Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def table(times: dict[str, float], runs: int) -> str:
    base = times["baseline"]
    lines = [
        f"Hardware: {hardware()}.",
        f"Medians of {runs} runs each, fresh processes, round-robin; `logitsearch` is `python -m service.cli`; "
        f"load average {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| command | median s | / baseline | target |",
        "|---|---|---|---|",
        f'| `python -c "{BASELINE}"` (baseline) | {base:.3f} | 1.00 | |',
    ]
    for name, seconds in times.items():
        if name != "baseline":
            target = f"<= {TARGETS[name]:.0f}x" if name in TARGETS else ""
            lines.append(f"| `{name}` | {seconds:.3f} | {seconds / base:.2f} | {target} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command (default 7)")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--no-server", action="store_true", help="skip `logitsearch search` (no service started)")
    args = parser.parse_args()
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    python = sys.executable
    commands = {
        "baseline": [python, "-c", BASELINE],
        "import service.client": [python, "-c", "import service.client"],
        "logitsearch --help": [python, "-m", "service.cli", "--help"],
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = None
        if not args.no_server:
            import numpy as np

            # Only the server's data need the library: imported here, never by the measured commands.
            from bench.search import make_data_dir, start_server

            vectors = np.random.default_rng(0).standard_normal((1000, 10)).astype(np.float32)
            name = make_data_dir(Path(tmp), 10, vectors)
            port = free_port()
            server = start_server(Path(tmp), name, port, threads=1)
            query = ",".join(["0.5"] * 10)
            url = f"http://127.0.0.1:{port}"
            commands["logitsearch search"] = [python, "-m", "service.cli", "search", "--logits", query, "--url", url]
        try:
            times = medians(commands, env, args.runs)
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
    text = f"# Start-up of the client and the CLI ({time.strftime('%Y-%m-%d')}, `python -m bench.startup`)\n\n"
    text += table(times, args.runs)
    sys.stdout.write(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
