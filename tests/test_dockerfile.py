"""The image would build: every file the Dockerfile copies exists and is in the build context.

Docker cannot run on these machines; `.ci/run` lints the Dockerfile with hadolint, and this checks what
hadolint does not: the sources of each COPY, against the repository and `.dockerignore`.
"""

import fnmatch
import shlex
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _instructions(dockerfile: Path) -> list[list[str]]:
    """Each instruction as words, continuation lines joined and comments dropped."""
    text = "\n".join(line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#"))
    return [shlex.split(line) for line in text.replace("\\\n", " ").splitlines() if line.strip()]


def _copied_sources(dockerfile: Path) -> list[str]:
    """The sources of every COPY/ADD from the build context (not `--from` another stage)."""
    sources: list[str] = []
    for words in _instructions(dockerfile):
        if words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources += args[:-1]
    return sources


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether `.dockerignore` keeps `path` (or a folder above it) out of the build context; last match wins."""
    parts = path.split("/")
    ignored = False
    for pattern in patterns:
        exclude = not pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatch("/".join(parts[:n]), pattern) for n in range(1, len(parts) + 1)):
            ignored = exclude
    return ignored


def test_every_copied_file_exists_in_the_build_context() -> None:
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    sources = _copied_sources(ROOT / "Dockerfile")
    assert sources, "the Dockerfile copies nothing: the parser above no longer understands it"
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
        assert not _ignored(source.rstrip("/"), patterns), f"Dockerfile copies {source}, which .dockerignore excludes"


def test_the_image_gets_every_package_of_the_wheel() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    copied = {source.strip("./") for source in _copied_sources(ROOT / "Dockerfile")}
    assert set(packages["packages"]) <= copied
    assert {"pyproject.toml", "README.md"} <= copied  # hatchling reads both to build the package
