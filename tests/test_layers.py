"""The arrows of ARCHITECTURE.md, checked on every module's imports.

cli -> flows -> tasks -> (attnviz, warehouse). The core imports neither Prefect nor
DuckDB nor a layer above it (the CLI package alone reaches up, inside its commands);
the warehouse imports no task or flow; no flow imports another flow.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLI = set((ROOT / "attnviz" / "cli").glob("*.py"))


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as dotted names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def refused(path: Path, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imports(path)
        if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


@pytest.mark.parametrize("path", modules("attnviz"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_prefect_no_duckdb_and_no_layer_above_it(path: Path) -> None:
    above = ("prefect", "duckdb", "warehouse", "tasks", "flows")
    allowed = ("prefect", "duckdb", "warehouse", "flows") if path in CLI else ()
    assert [name for name in refused(path, above) if name.split(".")[0] not in allowed] == []


@pytest.mark.parametrize("path", modules("warehouse"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_warehouse_imports_no_task_no_flow_and_no_prefect(path: Path) -> None:
    assert refused(path, ("tasks", "flows", "prefect")) == []


@pytest.mark.parametrize("path", modules("tasks"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tasks_import_no_flow(path: Path) -> None:
    assert refused(path, ("flows",)) == []


@pytest.mark.parametrize("path", modules("flows"), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_flow_imports_another_flow(path: Path) -> None:
    flows_with_a_flow = {"flows.ingest", "flows.nightly", "flows.backfill", "flows.backtest"}
    assert sorted(set(refused(path, ("flows",))) & flows_with_a_flow) == []


def test_nothing_but_the_cli_imports_flows() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for package in ("attnviz", "warehouse", "tasks")
        for path in modules(package)
        if refused(path, ("flows",))
    }
    assert all(path.startswith("attnviz/cli/") for path in importers)
