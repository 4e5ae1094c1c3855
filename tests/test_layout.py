"""The test tree's layout: shared helpers live in helper modules, never in another test module."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in `source`, nested ones included, relative ones resolved from `package`;
    for `from m import n` both `m` and `m.n` (`n` may be a module)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            found += [(node.lineno, module)] + [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _is_test_module(module: str) -> bool:
    return module.split(".")[0] == "tests" and any(part.startswith("test_") for part in module.split("."))


def test_no_test_module_imports_another_test_module() -> None:
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        offences += [
            f"{path.relative_to(TESTS.parent)}:{line} imports {module}"
            for line, module in _imports(path.read_text(), package)
            if _is_test_module(module)
        ]
    assert offences == [], "shared helpers go in tests/helpers.py (servers: tests/servers.py):\n" + "\n".join(offences)


def test_the_check_sees_plain_from_nested_and_relative_imports() -> None:
    source = """
import tests.service.test_api
from tests.service.test_server import serving
from tests.helpers import b64
from tests.servers import serving as s


def f():
    from . import test_api
    from ..indexes.test_durable import x
"""
    flagged = {module for _, module in _imports(source, "tests.service") if _is_test_module(module)}
    assert flagged == {
        "tests.service.test_api",
        "tests.service.test_server",
        "tests.service.test_server.serving",
        "tests.indexes.test_durable",
        "tests.indexes.test_durable.x",
    }
