import subprocess
import sys

import nbformat
import pytest

from mlops_kit import errors
from mlops_kit.cli import main, parse_parameter
from mlops_kit.errors import ConfigError, NotebookFailed, ParameterError, ToolkitError
from mlops_kit.notebook import runner


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


def test_notebook_names_resolve_by_prefix(tmp_path):
    (tmp_path / "notebooks").mkdir()
    make_notebook(tmp_path / "notebooks" / "01_first.ipynb")
    make_notebook(tmp_path / "notebooks" / "02_second.ipynb")
    assert [p.name for p in runner.resolve(["02"])] == ["02_second.ipynb"]
    assert len(runner.resolve([])) == 2
    with pytest.raises(ConfigError, match="available: 01_first, 02_second"):
        runner.resolve(["03"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n=3", ("n", 3)),
        ("x=true", ("x", True)),
        ("d=wine", ("d", "wine")),
        ("f=0.5", ("f", 0.5)),
        ("e=", ("e", "")),
        ("s=a=b", ("s", "a=b")),
    ],
)
def test_cli_parameters_are_read_as_yaml(text, expected):
    assert parse_parameter(text) == expected


def test_cli_bad_parameter_exits_non_zero_with_one_line(tmp_path):
    from tests.support import EXAMPLE_CONFIG, REPO

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_kit.cli",
            "--config",
            str(EXAMPLE_CONFIG),
            "run",
            "-p",
            "dataset=nope",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "dataset" in lines[0] and "nope" in lines[0]
    assert "Traceback" not in proc.stderr


def test_cli_bad_config_exits_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("gates: {min_value: 7}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_kit.cli", "--config", "bad.yaml", "versions"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid settings in bad.yaml: gates.min_value")


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


def test_a_cli_command_raising_request_not_found_exits_2(capsys):
    assert main(["approve", "no-such-request", "--as", "bob"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no promotion request 'no-such-request'")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_notebooks_land_in_the_configured_reports_dir(tmp_path):
    source = make_notebook(tmp_path / "01_ok.ipynb", "result = 10 / divisor")
    (tmp_path / "mlops.yaml").write_text(f"reports_dir: {tmp_path / 'reports'}\n")
    (run,) = runner.run_notebooks([str(source)], config=tmp_path / "mlops.yaml", progress_bar=False)
    assert run.output == tmp_path / "reports" / "01_ok.ipynb"
    assert run.html.is_file()
