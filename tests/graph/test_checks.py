"""Every validation problem names the cell and step, gives a hint, and all are reported together."""

from __future__ import annotations

from typing import Any

import pytest
from nbbuild import build_notebook

from nbflow.errors import DagError, ValidationError
from nbflow.graph.build import build_dag
from nbflow.notebook.reader import spec_from_notebook

PARAMS = ("grid = [1, 2]\nrate = 0.1", ["parameters"])


def problems_of(cells: list[Any]) -> list[DagError]:
    spec = spec_from_notebook(build_notebook(cells), "nb.ipynb")
    with pytest.raises(ValidationError) as info:
        build_dag(spec)
    assert all(isinstance(p, DagError) for p in info.value.problems)
    return list(info.value.problems)


# (title, cells, cell, step, message part, hint part)
PROBLEMS = [
    ("duplicate step names", ["%%step a\nx = 1", "%%step a\ny = 2"],
     2, "a", "step name 'a' is already used by cell 1", "its own name"),
    ("--after names no step", ["%%step load\nx = 1", "%%step b --after lod\ny = 2"],
     2, "b", "--after 'lod' names no step", "did you mean --after load?"),
    ("--after names nothing close", ["%%step load\nx = 1", "%%step b --after zzz\ny = 2"],
     2, "b", "--after 'zzz' names no step", "steps are: load, b"),
    ("cycle through --after", ["%%step a --after c\nx = 1", "%%step b\ny = x", "%%step c\nz = y"],
     1, "a", "steps 'a' (cell 1), 'b' (cell 2), 'c' (cell 3) wait for each other in a cycle",
     "remove it"),
    ("a step waiting for itself", ["%%step a --after a\nx = 1"],
     1, "a", "step 'a' waits for itself", "--after"),
    ("branch name is a parameter", [PARAMS, "%%branch rate --foreach grid\nv = 1"],
     2, "rate", "branch name 'rate' is also a parameter", "rename the branch"),
    ("branch name is a setup name", ["sweep = None", PARAMS, "%%branch sweep --foreach grid\nv = 1"],
     3, "sweep", "branch name 'sweep' is also a name bound by a setup cell", "rename"),
    ("branch name is bound by a step", [PARAMS, "%%branch s --foreach grid\nv = 1", "%%step b\ns = 2"],
     2, "s", "branch name 's' is also a variable bound by step 'b' (cell 3)", "rename"),
    ("branch binds its own name", [PARAMS, "%%branch s --foreach grid\ns = 1"],
     2, "s", "a variable bound by its own cell", "rename"),
    ("step name is a parameter", [PARAMS, "%%step grid\nx = 1"],
     2, "grid", "step name 'grid' is also a parameter (cell 1)", "rename the step"),
    ("--foreach over nothing", ["%%branch s --foreach items\nv = item"],
     1, "s", "--foreach 'items' names nothing defined above this cell",
     "define 'items' in an earlier step, a setup cell or the parameters cell"),
    ("--foreach over a later step's output", ["%%branch s --foreach xs\nv = 1", "%%step a\nxs = [1]"],
     1, "s", "--foreach 'xs' names nothing defined above", "step 'a' defines it in a later cell (2)"),
    ("--foreach over a branch-local name", [PARAMS, "%%branch s --foreach grid\nxs = [1]",
                                            "%%branch t --foreach xs\nv = 1"],
     3, "t", "--foreach 'xs' names nothing", "bound only inside branch 's'"),
    ("reading a name only a later cell defines", ["%%step a\ny = x + 1", "%%step b\nx = 1"],
     1, "a", "reads 'x', which only a later cell defines: step 'b' (cell 2)",
     "move the cell up or add the producing step earlier"),
    ("reading a later branch", [PARAMS, "%%step a\nbest = max(s)", "%%branch s --foreach grid\nv = 1"],
     2, "a", "reads 's', which only a later cell defines: branch 's' (cell 3)", "move the cell up"),
    ("reading a branch-local name", [PARAMS, "%%branch sweep --foreach grid --as c\nmodel = c",
                                     "%%step choose\nbest = model"],
     3, "choose", "reads 'model', which is bound only inside branch 'sweep' (cell 2)",
     "sweep[i].model"),
    ("reading another step's private name", ["%%step a\n_tmp = 1", "%%step b\ny = _tmp"],
     2, "b", "reads '_tmp' from step 'a' (cell 1), but names starting with '_' are private",
     "rename it without the leading underscore"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("title", "cells", "cell", "step", "message", "hint"), PROBLEMS, ids=[p[0] for p in PROBLEMS]
)
def test_each_problem(
    title: str, cells: list[Any], cell: int, step: str, message: str, hint: str
) -> None:
    [problem] = problems_of(cells)
    assert (problem.cell, problem.step, problem.notebook) == (cell, step, "nb.ipynb")
    assert message in problem.message
    assert problem.hint is not None and hint in problem.hint
    assert f"nb.ipynb, cell {cell}, step {step!r}" in str(problem)


def test_all_problems_are_reported_together_in_cell_order() -> None:
    cells = [
        PARAMS,
        "%%step grid\nx = 1",  # 2: step name is a parameter
        "%%step b --after nope\ny = later",  # 3: unknown --after, reads a later name
        "%%branch s --foreach missing\nm = 1",  # 4: foreach over nothing
        "%%step b\nz = m",  # 5: duplicate name, reads a branch-local name
        "%%step c\nlater = 1",
    ]
    problems = problems_of(cells)
    assert [p.cell for p in problems] == [2, 3, 3, 4, 5, 5]
    text = str(ValidationError(problems))
    assert text.startswith("6 problem(s) found before running:")
    for part in ("is also a parameter", "--after 'nope'", "reads 'later'", "--foreach 'missing'",
                 "already used by cell 3", "bound only inside branch 's'"):  # fmt: skip
        assert part in text


def test_unresolved_names_are_not_errors() -> None:
    spec = spec_from_notebook(build_notebook(["%%step a\nx = kernel_thing + 1"]), "nb.ipynb")
    assert build_dag(spec).bindings["a"]["kernel_thing"].source == "unresolved"


def test_a_step_reading_its_own_later_binding_is_not_a_later_cell() -> None:
    spec = spec_from_notebook(build_notebook(["%%step a\nx = x + 1"]), "nb.ipynb")
    assert build_dag(spec).bindings["a"]["x"].source == "unresolved"


def test_validation_error_pickles() -> None:
    import pickle

    problems = problems_of(["%%step a\nx = 1", "%%step a\ny = 2"])
    error = pickle.loads(pickle.dumps(ValidationError(problems)))
    assert error.problems[0].cell == 2 and error.problems[0].hint
