"""The stage list matches the code and the demo, and the committed diagram is drawn from it."""

from __future__ import annotations

import re

import pytest

from mlops_kit import diagram
from mlops_kit.stages import STAGES, Stage, runs
from tests.support import NOTEBOOKS, REPO

PACKAGE = REPO / "mlops_kit"


def test_committed_diagram_is_what_the_stages_draw():
    assert (REPO / "images" / "pipeline.svg").read_text(encoding="utf-8") == diagram.render(), (
        "images/pipeline.svg is out of date with mlops_kit/stages.py: run `make docs`"
    )


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: f"{s.name}-{s.environment}")
def test_each_stage_names_a_module_and_a_notebook_that_exist(stage):
    path = PACKAGE / stage.module.replace(".", "/")
    assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), stage.module
    assert (NOTEBOOKS / f"{stage.notebook}.ipynb").is_file(), stage.notebook


def test_the_runs_are_those_of_make_demo():
    makefile = (REPO / "Makefile").read_text()
    demo = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    ordered = [n for line in re.findall(r"mlops-kit run[^\n]*", demo)
               for n in re.findall(r"\s(\d\d)\b", line)]  # fmt: skip
    assert [notebook[:2] for notebook, _ in runs()] == ordered


def test_consecutive_stages_of_a_notebook_form_one_run():
    a, b, c = (Stage(n, "", "m", nb) for n, nb in (("x", "01_a"), ("y", "01_a"), ("z", "02_b")))
    assert runs((a, b, c)) == [("01_a", [a, b]), ("02_b", [c])]


def test_write_and_main(tmp_path, capsys):
    target = tmp_path / "img" / "pipeline.svg"
    assert diagram.main([str(target)]) == 0
    assert target.read_text(encoding="utf-8").startswith("<svg ")
    assert "wrote" in capsys.readouterr().out
    assert "http://" not in diagram.render().replace('xmlns="http://www.w3.org/2000/svg"', "")
