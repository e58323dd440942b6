"""Layering contracts, stated once and enforced (in the manner of Kedro's import-linter)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlops_kit"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(pattern: str) -> list[Path]:
    return sorted(PACKAGE.glob(pattern))


@pytest.mark.parametrize("path", modules("targets/*.py"), ids=lambda p: p.name)
def test_targets_never_import_orchestration_or_views(path):
    forbidden = ("mlops_kit.widgets", "mlops_kit.promotion", "mlops_kit.runner", "mlops_kit.cli")
    assert not [n for n in imports_of(path) if n.startswith(forbidden)]


def test_errors_module_has_no_third_party_imports():
    assert imports_of(PACKAGE / "errors.py") <= {"__future__", "__future__.annotations"}


def test_approvals_model_is_pure():
    allowed = ("__future__", "dataclasses", "datetime", "typing", "mlops_kit.errors",
               "mlops_kit.settings")  # fmt: skip
    assert all(n.startswith(allowed) for n in imports_of(PACKAGE / "approvals.py"))


def test_widgets_are_a_thin_view():
    names = imports_of(PACKAGE / "widgets.py")
    assert not [n for n in names if n.startswith(("mlops_kit.gitops", "mlops_kit.targets"))]


def test_heavy_sdks_are_imported_lazily():
    heavy = ("mlflow", "kubernetes", "boto3", "locust", "papermill", "sklearn", "ipywidgets")
    for path in modules("**/*.py"):
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        for node in top:
            mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            if path.parent.name == "serving":
                continue  # runs inside MLServer, where mlflow is the point
            assert not (mod or "").startswith(heavy), f"{path.name} imports {mod} at module level"
