"""Reading a notebook: setup, parameters, steps, scratch cells, and their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbbuild import FIXTURES, build_notebook, make_notebook, md

from nbflow.errors import MagicArgumentError, NotebookError
from nbflow.notebook.reader import read_notebook, spec_from_notebook
from nbflow.notebook.spec import REQUIRED, NotebookSpec, Parameter

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def spec_of(cells: list[Any], path: str = "flow.ipynb") -> NotebookSpec:
    return spec_from_notebook(build_notebook(cells), path)


def test_reads_the_design_example(tmp_path: Path) -> None:
    spec = read_notebook(make_notebook(FIXTURES["classifier"], tmp_path / "classifier.ipynb"))
    assert spec.flow == "classifier"
    assert spec.kernel_name == "python3"
    assert [c.cell for c in spec.setup] == [1, 2]
    assert [c.is_parameters for c in spec.setup] == [False, True]
    assert [(s.name, s.kind, s.cell) for s in spec.steps] == [
        ("load", "step", 3), ("knn", "step", 4), ("svm", "step", 5),
        ("sweep", "branch", 6), ("choose", "step", 7),
    ]  # fmt: skip
    assert spec.scratch_cells == (8,)
    assert spec.setup_outputs == {"pd", "datasets", "train_test_split"}
    load = spec.step("load")
    assert load.inputs == {"datasets", "dataset", "train_test_split", "test_size"}
    assert load.outputs == {"X", "y", "X_train", "X_test", "y_train", "y_test"}
    assert load.source.startswith("X, y = ")
    sweep = spec.step("sweep")
    assert sweep.magic.foreach == "grid" and sweep.magic.as_ == "c"
    assert "grid" in sweep.inputs and "c" not in sweep.inputs
    assert sweep.outputs == {"model", "score"}


def test_parameters_cell() -> None:
    cells = [("x = 0.2\ngrid = [0.1, 1.0]\nname: str\nn: int = 5\nflag = False\nnothing = None\n"
              "neg = -3\n'''docs'''\nopt: int | None = None", ["parameters", "other"])]  # fmt: skip
    params = spec_of(cells).parameters
    assert params == (
        Parameter("x", 0.2, "float", 1),
        Parameter("grid", [0.1, 1.0], "list", 1),
        Parameter("name", REQUIRED, "str", 1),
        Parameter("n", 5, "int", 1),
        Parameter("flag", False, "bool", 1),
        Parameter("nothing", None, "NoneType", 1),
        Parameter("neg", -3, "int", 1),
        Parameter("opt", None, "int | None", 1),
    )
    assert params[2].required and not params[3].required


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("a = 1\nb = compute()", "the default 'compute()' is not a literal", 2),
        ("import os", "line 1 of the parameters cell is not a parameter", 1),
        ("a = 1\nx.y = 2", "line 2 of the parameters cell is not a parameter", 2),
        ("a = (", "syntax error on line 1 of the parameters cell", 1),
    ],
)  # fmt: skip
def test_bad_parameters_cell(source: str, message: str, line: int) -> None:
    with pytest.raises(NotebookError) as info:
        spec_of(["import os", (source, ["parameters"]), "%%step s\nz = 1"])
    assert message in info.value.message
    assert info.value.cell == 2 and info.value.line == line and info.value.hint


def test_cells_are_numbered_as_the_user_sees_them() -> None:
    spec = spec_of([md("# Title"), "import math", md("## Steps"), "%%step a\nx = math.pi",
                    "   \n", "x", "%%step b\ny = x"])  # fmt: skip
    assert [c.cell for c in spec.setup] == [2]
    assert [s.cell for s in spec.steps] == [4, 7]
    assert spec.scratch_cells == (6,)  # the empty cell 5 is neither setup nor scratch


def test_magic_may_follow_blank_lines_and_body_keeps_its_lines() -> None:
    spec = spec_of(["\n%%step a --retry 1\nx = 1\n\ny = 2"])
    step = spec.steps[0]
    assert step.magic.retry == 1
    assert step.source == "x = 1\n\ny = 2"


def test_setup_inputs_are_the_parameters_setup_reads() -> None:
    spec = spec_of(["import os", ("root = '/data'", ["parameters"]),
                    "path = os.path.join(root, 'x')\nother = undefined", "%%step s\nz = path"])  # fmt: skip
    assert spec.setup_outputs == {"os", "path", "other"}
    assert spec.setup_inputs == {"root"}


def test_mutation_of_setup_objects_needs_an_explicit_mutator() -> None:
    spec = spec_of(["import logging\nlog = logging.getLogger()\nresults = []",
                    "%%step a\nlog.info('x')\nresults.append(1)\nlogging.info('y')\nz = 1"])  # fmt: skip
    step = spec.steps[0]
    assert step.mutated == {"results"}
    assert step.outputs == {"results", "z"}


def test_modules_imported_by_steps_are_not_mutated() -> None:
    spec = spec_of(["%%step a\nimport numpy as np", "%%step b\nnp.random.seed(0)\nz = 1"])
    assert spec.step("b").mutated == frozenset()


def test_content_hash_is_a_projection_of_code_and_tags() -> None:
    base = spec_of(["import math", "%%step s\nx = 1"]).content_hash
    nb = build_notebook([md("changed prose"), "import math", "%%step s\nx = 1"])
    nb.cells[1].outputs = [{"output_type": "stream", "name": "stdout", "text": "noise"}]
    nb.cells[1].execution_count = 42
    nb.metadata["widgets"] = {"anything": 1}
    assert spec_from_notebook(nb, "flow.ipynb").content_hash == base
    assert spec_of(["import math", "%%step s\nx = 2"]).content_hash != base
    assert spec_of([("import math", ["t"]), "%%step s\nx = 1"]).content_hash != base
    assert len(base) == 64


def test_kernel_name_and_plain_dict_notebooks() -> None:
    nb = {"cells": [{"cell_type": "code", "source": ["%%step a\n", "x = 1"], "metadata": {}}],
          "metadata": {"kernelspec": {"name": "py311"}}}  # fmt: skip
    spec = spec_from_notebook(nb, "dir/my flow.ipynb")
    assert spec.kernel_name == "py311"
    assert spec.flow == "my flow"
    assert spec.steps[0].outputs == {"x"}
    assert spec_from_notebook({"cells": []}, "e.ipynb").kernel_name == "python3"


def test_parameters_after_the_first_step() -> None:
    with pytest.raises(NotebookError) as info:
        spec_of(["%%step a\nx = 1", ("n = 1", ["parameters"])])
    assert info.value.cell == 2 and "after the first step (cell 1)" in info.value.message
    assert "move the parameters cell above" in (info.value.hint or "")


def test_two_parameters_cells() -> None:
    with pytest.raises(NotebookError) as info:
        spec_of([("n = 1", ["parameters"]), ("m = 1", ["parameters"]), "%%step a\nx = 1"])
    assert info.value.cell == 2 and "cells 1 and 2" in info.value.message


def test_a_step_cannot_be_the_parameters_cell() -> None:
    with pytest.raises(NotebookError) as info:
        spec_of([("%%step a\nn = 1", ["parameters"])])
    assert info.value.cell == 1 and info.value.hint


def test_magic_not_on_the_first_line() -> None:
    with pytest.raises(NotebookError) as info:
        spec_of(["import os", "# train\n%%step train\nx = 1"])
    assert info.value.cell == 2 and info.value.line == 2
    assert "top of the cell" in (info.value.hint or "")


def test_bad_magic_line_names_the_cell() -> None:
    with pytest.raises(MagicArgumentError) as info:
        spec_of(["import os", "%%step a --retries 2\nx = 1"], path="nb.ipynb")
    assert (info.value.cell, info.value.notebook, info.value.step) == (2, "nb.ipynb", "a")


def test_syntax_error_in_a_step_names_cell_step_and_line() -> None:
    with pytest.raises(NotebookError) as info:
        spec_of(["import os", "%%step a\nx = 1\ny = )"])
    assert (info.value.cell, info.value.step, info.value.line) == (2, "a", 3)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="no such notebook"):
        read_notebook(tmp_path / "missing.ipynb")
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    with pytest.raises(NotebookError, match="cannot read") as info:
        read_notebook(broken)
    assert info.value.hint


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_notebooks_are_up_to_date(name: str, tmp_path: Path) -> None:
    fresh = read_notebook(make_notebook(FIXTURES[name], tmp_path / f"{name}.ipynb"))
    stored = read_notebook(FIXTURE_DIR / f"{name}.ipynb")
    assert stored.content_hash == fresh.content_hash, "run: python tests/nbbuild.py"
