"""The dependency rule, checked from the source text (import-linter checks it too)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
ALLOWED_ROOTS = set(sys.stdlib_module_names) | {"core", "__future__"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "<relative import>"))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def test_core_imports_only_the_standard_library_and_core() -> None:
    files = list((SRC / "core").rglob("*.py"))
    assert len(files) > 5, "the walk found no core modules: wrong path?"
    offenders = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in files
        for line, name in _imports(path)
        if name.split(".")[0] not in ALLOWED_ROOTS
    ]
    assert offenders == []


def test_the_allow_list_check_catches_a_third_party_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy\nfrom pydantic import BaseModel\nimport json\n")
    names = {name for _, name in _imports(bad) if name.split(".")[0] not in ALLOWED_ROOTS}
    assert names == {"sqlalchemy", "pydantic"}


def test_only_the_composition_root_imports_di_libraries() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if (SRC / "entrypoints" / "bootstrap") in path.parents:
            continue
        for line, name in _imports(path):
            if name.split(".")[0] in {"dependency_injector", "punq"}:
                offenders.append(f"{path.relative_to(SRC)}:{line}: {name}")
    assert offenders == []


def test_http_entrypoint_never_imports_adapters() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{line}: {name}"
        for path in (SRC / "entrypoints" / "http").rglob("*.py")
        for line, name in _imports(path)
        if name.split(".")[0] == "adapters"
    ]
    assert offenders == []


MAX_MODULE_LINES = 450


def _oversized(root: Path, limit: int) -> list[str]:
    return [
        f"{path.relative_to(root)}: {count} lines"
        for path in sorted(root.rglob("*.py"))
        if (count := len(path.read_text("utf-8").splitlines())) > limit
    ]


def test_no_module_holds_two_concepts_worth_of_lines() -> None:
    # Past ~300 lines a module usually holds two concepts; 450 is the hard stop.
    assert _oversized(SRC, MAX_MODULE_LINES) == []


def test_the_size_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "long.py").write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "short.py").write_text("x = 1\n")
    assert _oversized(tmp_path, MAX_MODULE_LINES) == [f"long.py: {MAX_MODULE_LINES + 1} lines"]
