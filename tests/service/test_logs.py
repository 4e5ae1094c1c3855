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


def _run(data_dir: Path, url: str, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", COMMANDS, str(data_dir), url, *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_default_level_hides_faiss_loader_and_http_request_lines(settings: Settings, tmp_path: Path) -> None:
    with serving(settings) as url:
        quiet = _run(tmp_path / "other", url)
        verbose = _run(tmp_path / "other", url, "--log-level", "debug")
    assert "digits-7" in quiet.stdout.splitlines()[-2]  # the search table is printed
    assert "faiss.loader" not in quiet.stderr and "HTTP Request" not in quiet.stderr, quiet.stderr
    assert "faiss.loader" in verbose.stderr  # what the default level hides is still there for debugging
