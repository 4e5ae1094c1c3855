"""The CLI's logs at the default level: no FAISS loader or httpx request lines; both come back at debug."""

import subprocess
import sys
from pathlib import Path

from service.config import Settings
from tests.servers import serving

# Each run is a fresh interpreter: FAISS logs its loader only when it is first imported.
COMMANDS = """
import sys
from service.cli import main
main(["indexes", "list", "--data-dir", sys.argv[1], *sys.argv[3:]])
main(["search", "--id", "digits-7", "-k", "2", "--url", sys.argv[2]])
"""


def _start(data_dir: Path, url: str, *flags: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", COMMANDS, str(data_dir), url, *flags]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_default_level_hides_faiss_loader_and_http_request_lines(settings: Settings, tmp_path: Path) -> None:
    with serving(settings) as url:
        # Both interpreters start at once: most of each run is importing.
        runs = [_start(tmp_path / "quiet", url), _start(tmp_path / "verbose", url, "--log-level", "debug")]
        quiet, verbose = (_finish(process) for process in runs)
    assert "digits-7" in quiet.stdout.splitlines()[-2]  # the search table is printed
    assert "faiss.loader" not in quiet.stderr and "HTTP Request" not in quiet.stderr, quiet.stderr
    assert "faiss.loader" in verbose.stderr  # what the default level hides is still there for debugging
