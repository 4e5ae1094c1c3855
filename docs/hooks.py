"""mkdocs hooks: publish the files the pages link to outside docs/ (the changelog, bench/results/, examples/).

The pages link to them as `../CHANGELOG.md`, `../bench/results/...` and `../examples/...`, which is right when the
Markdown is read in the repository; in the site they are published at the root, so those links lose their `../`.
"""

import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
#: Repository paths published beside the pages: files, or directories taken whole.
PUBLISHED = ("bench/results", "examples")
SKIPPED = {"__pycache__", ".pytest_cache"}
LINK = re.compile(r"\]\(\.\./((?:bench/results|examples)/[^)]*|CHANGELOG\.md)\)")


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, "changelog.md", abs_src_path=str(ROOT / "CHANGELOG.md")))
    for top in PUBLISHED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and not SKIPPED.intersection(path.parts):
                files.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    return files


def on_page_markdown(markdown: str, page: Page, **kwargs: Any) -> str:
    if "/" in page.file.src_uri:  # only the pages of docs/ itself link upwards
        return markdown
    return LINK.sub(lambda match: "](" + match.group(1).replace("CHANGELOG.md", "changelog.md") + ")", markdown)
