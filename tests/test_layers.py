"""Layering contracts, stated once and enforced (in the manner of Kedro's import-linter).

The stage packages form layers; each line below is one contract:

- ``errors`` imports nothing; ``display`` (the static HTML cells show, which any layer may use)
  only the stdlib; ``settings`` builds on those two.
- ``serving`` runs inside MLServer: it imports nothing of the toolkit but ``errors``/``settings``.
- ``targets`` never import orchestration (``promote``, ``notebook``, ``cli``) or views.
- ``promote.approvals`` is a pure model; ``promote.evidence`` (its static HTML) and
  ``promote.widgets`` are thin views over it.
- Heavy SDKs are imported where they are used, never at module level.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlops_kit"
STAGES = ("train", "registry", "gitops", "targets", "serving", "verify", "promote", "notebook")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def toolkit_imports(path: Path) -> set[str]:
    return {n for n in imports_of(path) if n.startswith("mlops_kit")}


def modules(pattern: str) -> list[Path]:
    return sorted(PACKAGE.glob(pattern))


def test_the_tree_has_the_stage_packages():
    for stage in STAGES:
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
        assert ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))


@pytest.mark.parametrize("path", modules("**/*.py"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_500_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 500, f"{lines} lines"


@pytest.mark.parametrize("path", modules("targets/**/*.py"), ids=lambda p: p.name)
def test_targets_never_import_orchestration_or_views(path):
    forbidden = ("mlops_kit.promote", "mlops_kit.notebook", "mlops_kit.cli")
    assert not [n for n in toolkit_imports(path) if n.startswith(forbidden)]


@pytest.mark.parametrize("path", modules("serving/**/*.py"), ids=lambda p: p.name)
def test_serving_code_stands_alone(path):
    allowed = ("mlops_kit.serving", "mlops_kit.errors", "mlops_kit.settings")
    assert all(n.startswith(allowed) for n in toolkit_imports(path))


@pytest.mark.parametrize("path", modules("errors/*.py"), ids=lambda p: p.name)
def test_errors_have_no_third_party_imports(path):
    names = {n for n in imports_of(path) if not n.startswith("mlops_kit.errors")}
    assert names <= {"__future__", "__future__.annotations"}


def test_every_error_is_exported_by_the_errors_package():
    import inspect

    from mlops_kit import errors

    for path in modules("errors/*.py"):
        module = importlib.import_module(f"mlops_kit.errors.{path.stem}")
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, errors.ToolkitError):
                assert getattr(errors, name) is obj, f"{name} is not exported by mlops_kit.errors"


def test_display_helpers_import_only_the_stdlib():
    import sys

    top = {n.split(".")[0] for n in imports_of(PACKAGE / "display.py")}
    assert top <= set(sys.stdlib_module_names) | {"__future__"}, top


def test_approvals_model_is_pure():
    allowed = ("__future__", "dataclasses", "datetime", "json", "typing", "mlops_kit.errors",
               "mlops_kit.redact", "mlops_kit.settings", "mlops_kit.display",
               "mlops_kit.promote.evidence")  # fmt: skip
    assert all(n.startswith(allowed) for n in imports_of(PACKAGE / "promote" / "approvals.py"))


def test_evidence_is_a_view_of_the_request():
    # Types only for project and registry: the caller hands them in to gather from.
    names = toolkit_imports(PACKAGE / "promote" / "evidence.py")
    allowed = ("mlops_kit.display", "mlops_kit.promote.approvals", "mlops_kit.project",
               "mlops_kit.registry.client")  # fmt: skip
    assert all(n.startswith(allowed) for n in names - {"mlops_kit"})


def test_widgets_are_a_thin_view():
    names = toolkit_imports(PACKAGE / "promote" / "widgets.py")
    assert not [n for n in names if n.startswith(("mlops_kit.gitops", "mlops_kit.targets"))]


def test_heavy_sdks_are_imported_lazily():
    heavy = ("mlflow", "kubernetes", "boto3", "locust", "papermill", "sklearn", "ipywidgets")
    for path in modules("**/*.py"):
        if path.parent.name == "serving":
            continue  # runs inside MLServer, where mlflow is the point
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        for node in top:
            mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert not (mod or "").startswith(heavy), f"{path.name} imports {mod} at module level"
