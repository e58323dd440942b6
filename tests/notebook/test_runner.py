import os

import nbformat
import pytest

from mlops_kit import errors
from mlops_kit.errors import ConfigError, NotebookFailed, ParameterError, ToolkitError
from mlops_kit.notebook import runner
from tests.support import write_project


def make_notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell("divisor = 1")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params] + [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_failing_cell_is_reported_and_the_executed_notebook_kept(tmp_path):
    source = make_notebook(tmp_path / "01_fails.ipynb", "x = 1", "y = 10 / divisor")
    with pytest.raises(NotebookFailed) as exc:
        runner.run_notebooks(
            [str(source)], {"divisor": 0}, output_dir=tmp_path / "out", progress_bar=False
        )
    err = exc.value
    assert err.notebook == "01_fails.ipynb"
    assert err.ename == "ZeroDivisionError"
    assert err.exit_code == 1
    assert "cell" in str(err) and "ZeroDivisionError" in str(err)
    kept = nbformat.read(tmp_path / "out" / "01_fails.ipynb", as_version=4)
    assert any(
        o.get("ename") == "ZeroDivisionError" for c in kept.cells for o in c.get("outputs", [])
    )
    assert (tmp_path / "out" / "01_fails.html").is_file()


@pytest.mark.slow
def test_success_writes_notebook_and_html_and_injects_parameters(tmp_path):
    source = make_notebook(tmp_path / "01_ok.ipynb", "result = 10 / divisor")
    (run,) = runner.run_notebooks(
        [str(source)], {"divisor": 5}, output_dir=tmp_path / "out", progress_bar=False
    )
    assert run.html.read_text().startswith("<!DOCTYPE html>")
    executed = nbformat.read(run.output, as_version=4)
    # The report's headline first, then the parameters cell and papermill's injected one.
    assert "mlops-headline" in executed.cells[0].metadata.tags
    assert "injected-parameters" in executed.cells[2].metadata.tags


def test_unknown_parameter_is_refused_before_any_kernel_starts(tmp_path):
    source = make_notebook(tmp_path / "01_ok.ipynb", "pass")
    with pytest.raises(ParameterError, match="'colour'.*known: divisor"):
        runner.run_notebooks([str(source)], {"colour": "red"}, output_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "01_ok.ipynb").exists()


def test_notebook_names_resolve_by_prefix_in_the_projects_own_notebooks(tmp_path, monkeypatch):
    write_project(tmp_path)
    (tmp_path / "notebooks" / "sub").mkdir(parents=True)
    make_notebook(tmp_path / "notebooks" / "01_first.ipynb")
    make_notebook(tmp_path / "notebooks" / "02_second.ipynb")
    monkeypatch.chdir(tmp_path / "notebooks" / "sub")
    assert runner.notebooks_dir() == tmp_path / "notebooks"
    assert [p.name for p in runner.resolve(["02"])] == ["02_second.ipynb"]
    assert len(runner.resolve([])) == 2
    with pytest.raises(ConfigError, match="available: 01_first, 02_second"):
        runner.resolve(["03"])


PIPELINE = ["01_setup_cluster", "02_create_pipeline", "03_promote_model", "04_load_test"]


def test_the_toolkit_ships_the_four_pipeline_notebooks():
    shipped = runner.shipped_notebooks()
    assert [p.stem for p in sorted(shipped.glob("*.ipynb"))] == PIPELINE


def test_without_notebooks_of_its_own_a_project_runs_the_shipped_ones(tmp_path):
    assert runner.notebooks_dir() == runner.shipped_notebooks()  # no project file at all
    write_project(tmp_path)
    (tmp_path / "notebooks").mkdir()  # empty: nothing of its own
    assert runner.notebooks_dir() == runner.shipped_notebooks()
    assert [p.stem for p in runner.resolve(["02", "04"])] == [PIPELINE[1], PIPELINE[3]]


def test_the_wheel_carries_the_notebooks_as_package_data():
    import tomllib

    from tests.support import REPO

    build = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert build["targets"]["wheel"]["force-include"] == {"notebooks": "mlops_kit/_notebooks"}


@pytest.mark.parametrize(
    ("ename", "code"),
    [
        ("ConfigError", 2),
        ("ParameterError", 2),
        ("MissingDependencyError", 2),
        ("TargetNotFound", 2),
        ("RequestNotFound", 2),
        ("GateFailed", 1),
        ("ToolkitError", 1),
        ("ZeroDivisionError", 1),
        ("annotations", 1),  # a name in mlops_kit.errors that is no error class
        ("NoSuchError", 1),
    ],
)
def test_a_cells_exit_code_comes_from_the_error_class(ename, code):
    assert runner.exit_code(ename) == code


def test_every_toolkit_error_maps_to_its_own_exit_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type)]
    assert all(issubclass(c, ToolkitError) for c in classes)
    assert {c.__name__: runner.exit_code(c.__name__) for c in classes} == {
        c.__name__: c.exit_code for c in classes
    }


@pytest.mark.slow
def test_a_cell_raising_request_not_found_exits_2(tmp_path):
    source = make_notebook(
        tmp_path / "01_request.ipynb",
        "from mlops_kit.errors import RequestNotFound\nraise RequestNotFound('r-1', [])",
    )
    with pytest.raises(NotebookFailed) as exc:
        runner.run_notebooks([str(source)], output_dir=tmp_path / "out", progress_bar=False)
    assert (exc.value.ename, exc.value.exit_code) == ("RequestNotFound", 2)


@pytest.mark.slow
def test_kernels_get_the_project_file_whatever_their_working_directory(tmp_path, monkeypatch):
    config = write_project(tmp_path / "project")
    (tmp_path / "project" / "notebooks").mkdir()
    expected = repr(str(config))
    make_notebook(
        tmp_path / "project" / "notebooks" / "01_env.ipynb",
        f"import os\nassert os.environ['MLOPS_KIT_CONFIG'] == {expected}",
        "from mlops_kit.settings import load_settings\n"
        f"assert str(load_settings().state_dir) == {str(tmp_path / 'project' / '.mlops')!r}",
    )
    monkeypatch.chdir(tmp_path / "project" / "notebooks")
    (run,) = runner.run_notebooks(["01"], progress_bar=False)
    assert run.output == tmp_path / "project" / "build" / "notebooks" / "01_env.ipynb"
    assert "MLOPS_KIT_CONFIG" not in os.environ


@pytest.mark.slow
def test_notebooks_land_in_the_configured_reports_dir(tmp_path):
    source = make_notebook(tmp_path / "01_ok.ipynb", "result = 10 / divisor")
    (tmp_path / "mlops.yaml").write_text(f"model_name: m\nreports_dir: {tmp_path / 'reports'}\n")
    (run,) = runner.run_notebooks([str(source)], config=tmp_path / "mlops.yaml", progress_bar=False)
    assert run.output == tmp_path / "reports" / "01_ok.ipynb"
    assert run.html.is_file()


@pytest.mark.slow
def test_kernels_start_without_the_tcp_encryption_warning(tmp_path, capfd):
    # The kernel is a child process writing to the inherited fd 2: capfd sees what it logs.
    source = make_notebook(
        tmp_path / "01_ok.ipynb", "import sys\nprint('to stderr', file=sys.stderr)"
    )
    runner.run_notebooks([str(source)], output_dir=tmp_path / "out", progress_bar=False)
    err = capfd.readouterr().err
    assert "without encryption" not in err
    assert "WARNING" not in err


@pytest.mark.slow
def test_a_failed_cell_is_named_as_jupyterlab_shows_it(tmp_path):
    source = make_notebook(tmp_path / "01_fails.ipynb", "x = 1", "y = 10 / divisor")
    with pytest.raises(NotebookFailed) as exc:
        runner.run_notebooks(
            [str(source)], {"divisor": 0}, output_dir=tmp_path / "out", progress_bar=False
        )
    kept = nbformat.read(tmp_path / "out" / "01_fails.ipynb", as_version=4)
    [failed] = [c for c in kept.cells if any(o.get("ename") for o in c.get("outputs", []))]
    # parameters [1], injected parameters [2], x = 1 [3], the division [4].
    assert failed.execution_count == 4 == exc.value.execution_count
    assert "01_fails.ipynb, cell In [4]: ZeroDivisionError: division by zero" in str(exc.value)
    # papermill's banner at the top of the kept notebook names the same cell.
    assert "In [4]" in kept.cells[0].source


def test_a_cells_error_is_one_short_line():
    frame = "     mean radius  mean texture\n0   17.99  10.38\n"
    dump = f"Failed to enforce schema of data '{frame}' with schema 's'. Error: missing ['ash']"
    assert runner.error_line(dump) == (
        "the data does not fit the model's input schema: missing ['ash']"
    )
    assert runner.error_line("first\nsecond") == "first"
    assert len(runner.error_line("x" * 2000)) == runner.MAX_ERROR_LINE
    assert runner.error_line("") == ""


def test_a_failure_without_an_execution_count_is_named_by_position():
    err = NotebookFailed("02.ipynb", 6, "KeyError", "'a'", "out/02.ipynb")
    assert str(err).startswith("02.ipynb, cell #7: KeyError")
