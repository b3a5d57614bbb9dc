"""The tree keeps the shape it draws: the ground floor and the adapter and
desktop import no engine internals, llama/ alone imports llama_cpp, one
module makes gRPC channels, and no hand-written module outgrows one job."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Folder -> the package it installs as.
PACKAGES = {"hearth": "hearth", "engine": "hearth.engine", "adapter": "hearth.adapter", "desktop": "hearth.desktop"}
MAX_LINES = 450


def python_files(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        files += [p for p in (REPO / folder).rglob("*.py") if "v1" not in p.relative_to(REPO).parts]
    return sorted(files)


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def engine_internals(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("hearth.engine.") and not m.startswith("hearth.engine.v1")}


@pytest.mark.parametrize("path", python_files("hearth", "adapter", "desktop"), ids=lambda p: str(p.relative_to(REPO)))
def test_only_the_cli_imports_engine_internals(path: Path):
    if path.is_relative_to(REPO / "hearth" / "cli"):
        return
    assert not engine_internals(imported_modules(path))


def test_llama_cpp_is_imported_only_under_engine_llama():
    importers = [
        str(p.relative_to(REPO))
        for p in python_files("hearth", "engine", "adapter", "desktop")
        if any(m == "llama_cpp" or m.startswith("llama_cpp.") for m in imported_modules(p))
    ]
    assert importers and all(path.startswith("engine/llama/") for path in importers), importers


def test_one_module_makes_grpc_channels():
    makers = [
        str(p.relative_to(REPO))
        for p in python_files("hearth", "engine", "adapter", "desktop", "tools")
        if "insecure_channel(" in p.read_text(encoding="utf-8") or "secure_channel(" in p.read_text(encoding="utf-8")
    ]
    assert makers == ["hearth/client/channel.py"]


def test_the_engine_root_holds_few_modules_and_every_package_says_what_it_owns():
    assert len(list((REPO / "engine").glob("*.py"))) <= 8
    for init in [p for folder in PACKAGES for p in (REPO / folder).rglob("__init__.py") if "v1" not in p.parts]:
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init


def test_no_hand_written_module_is_over_the_limit():
    long = [
        (str(p.relative_to(REPO)), n)
        for p in python_files("hearth", "engine", "adapter", "desktop", "tools", "tests")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    ]
    assert not long
