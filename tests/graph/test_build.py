"""Graph shapes as data: notebook cells -> edges and where each input comes from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nbbuild import FIXTURES, build_notebook, md

from nbflow.graph.build import Binding, Dag, build_dag
from nbflow.graph.topo import ancestors, descendants, topo_order
from nbflow.notebook.reader import read_notebook, spec_from_notebook

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "notebooks"
PARAMS = ("grid = [1, 2]\nrate = 0.1", ["parameters"])


def dag_of(cells: list[Any]) -> Dag:
    return build_dag(spec_from_notebook(build_notebook(cells), "flow.ipynb"))


def edges(dag: Dag) -> set[tuple[str, str]]:
    return set(dag.edges)


SHAPES = [
    ("chain", ["%%step a\nx = 1", "%%step b\ny = x", "%%step c\nz = y"],
     {("a", "b"), ("b", "c")}),
    ("fan out and join", ["%%step a\nx = 1", "%%step b\ny = x", "%%step c\nz = x",
                          "%%step d\nw = y + z"],
     {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}),
    ("independent", ["%%step a\nx = 1", "%%step b\ny = 2"], set()),
    ("nearest earlier producer wins", ["%%step a\nn = 1", "%%step b\nn = n + 1",
                                       "%%step c\nm = n"],
     {("a", "b"), ("b", "c")}),
    ("rebinding without reading is not an edge", ["%%step a\nn = 1", "%%step b\nn = 2",
                                                  "%%step c\nm = n"],
     {("b", "c")}),
    ("mutation republishes", ["%%step a\nlst = []", "%%step b\nlst.append(1)",
                              "%%step c\nk = len(lst)"],
     {("a", "b"), ("b", "c")}),
    ("--after adds an edge", ["%%step a\nx = 1", "%%step b --after a\ny = 2"], {("a", "b")}),
    ("parameters and setup create no edges", ["import math", PARAMS,
                                              "%%step a\nx = math.pi * rate",
                                              "%%step b\ny = rate + len(grid)"],
     set()),
    ("branch over a parameter", [PARAMS, "%%branch s --foreach grid\nv = item * 2",
                                 "%%step j\nbest = max(t.v for t in s)"],
     {("s", "j")}),
    ("branch over a step's output", ["%%step a\nxs = [1, 2]", "%%branch s --foreach xs --as x\nv = x",
                                     "%%step j\nt = s"],
     {("a", "s"), ("s", "j")}),
    ("chained maps", ["%%step a\nxs = [1, 2]", "%%branch s1 --foreach xs --as x\nv = x",
                      "%%branch s2 --foreach s1 --as t\nw = t.v * 2", "%%step j\nr = s2"],
     {("a", "s1"), ("s1", "s2"), ("s2", "j")}),
    ("names from before a branch stay visible", ["%%step a\nxs = [1]\nk = 3",
                                                 "%%branch s --foreach xs --as x\nv = x * k",
                                                 "%%step j\nr = (s, k)"],
     {("a", "s"), ("s", "j"), ("a", "j")}),
    ("a branch's inner names do not shadow earlier ones", ["%%step a\nxs = [1]\nv = 0",
                                                           "%%branch s --foreach xs --as x\nv = x",
                                                           "%%step j\nr = v"],
     {("a", "s"), ("a", "j")}),
    ("scratch cells are not steps", ["%%step a\nx = 1", "x = 99", "%%step b\ny = x"],
     {("a", "b")}),
]  # fmt: skip


@pytest.mark.parametrize(("title", "cells", "expected"), SHAPES, ids=[s[0] for s in SHAPES])
def test_shapes(title: str, cells: list[Any], expected: set[tuple[str, str]]) -> None:
    assert edges(dag_of(cells)) == expected


def test_bindings_say_where_each_input_comes_from() -> None:
    dag = dag_of(["import math", PARAMS, "%%step a\nxs = [1]",
                  "%%branch s --foreach xs --as x\nv = x * rate",
                  "%%step j\nr = (s, xs, math.pi, grid, mystery)"])  # fmt: skip
    assert dict(dag.bindings["j"]) == {
        "s": Binding("s", "branch", "s"),
        "xs": Binding("xs", "step", "a"),
        "math": Binding("math", "setup"),
        "grid": Binding("grid", "parameter"),
        "mystery": Binding("mystery", "unresolved"),
    }
    assert dict(dag.bindings["s"]) == {
        "xs": Binding("xs", "step", "a"),
        "rate": Binding("rate", "parameter"),
    }


def test_a_step_shadows_a_parameter_for_later_cells() -> None:
    dag = dag_of([PARAMS, "%%step a\nrate = rate * 2", "%%step b\ny = rate"])
    assert dag.bindings["a"]["rate"] == Binding("rate", "parameter")
    assert dag.bindings["b"]["rate"] == Binding("rate", "step", "a")


def test_parents_are_in_cell_order_and_children_mirror_them() -> None:
    dag = dag_of(["%%step a\nx = 1", "%%step b\ny = 1", "%%step c --after a\nz = y + x"])
    assert dag.parents == {"a": (), "b": (), "c": ("a", "b")}
    assert dag.children == {"a": ("c",), "b": ("c",), "c": ()}


def test_dag_is_read_only() -> None:
    dag = dag_of(["%%step a\nx = 1"])
    with pytest.raises(TypeError):
        dag.parents["b"] = ()  # type: ignore[index]
    with pytest.raises(AttributeError):
        dag.steps = ()  # type: ignore[misc]


def test_topo_order_is_stable_in_cell_order() -> None:
    dag = dag_of(["%%step late --after b\nq = 1", "%%step a\nx = 1", "%%step b\ny = 2",
                  "%%step c\nz = x"])  # fmt: skip
    assert topo_order(dag) == ["a", "b", "late", "c"]


def test_ancestors_and_descendants() -> None:
    dag = dag_of(["%%step a\nx = 1", "%%step b\ny = x", "%%step c\nz = y", "%%step d\nw = 1"])
    assert ancestors(dag, "c") == {"a", "b"}
    assert descendants(dag, "a") == {"b", "c"}
    assert ancestors(dag, "d") == descendants(dag, "d") == frozenset()


def test_parallel_steps_binding_one_name_draw_a_warning() -> None:
    dag = dag_of(["%%step a\nxs = 1", "%%step knn\nmodel = xs", "%%step svm\nmodel = xs",
                  "%%step choose\nbest = model"])  # fmt: skip
    [warning] = dag.warnings
    assert "cells 2 and 3" in warning and "'knn'" in warning and "'svm'" in warning
    assert "'model'" in warning
    assert dag.bindings["choose"]["model"] == Binding("model", "step", "svm")


@pytest.mark.parametrize(
    "cells",
    [
        ["%%step a\nmodel = 1", "%%step b\nmodel = model + 1"],  # a chain, not parallel
        ["%%step a\nmodel = 1", "%%step b --after a\nmodel = 2"],
        ["%%step a\n_tmp = 1", "%%step b\n_tmp = 2"],  # private
        ["%%step a\nimport json", "%%step b\nimport json"],  # the same import
        [PARAMS, "%%branch s --foreach grid\nv = 1", "%%branch t --foreach grid\nv = 2"],
    ],
)
def test_no_warning(cells: list[Any]) -> None:
    assert dag_of(cells).warnings == ()


def test_unchecked_dag_for_live_views() -> None:
    cells = ["%%step a --after b\nx = 1", "%%step b --after a\ny = 1", "%%step a\nz = 1"]
    spec = spec_from_notebook(build_notebook(cells), "flow.ipynb")
    dag = build_dag(spec, check=False)
    assert len(dag.steps) == 3


def test_design_example(tmp_path: Path) -> None:
    dag = build_dag(read_notebook(FIXTURE_DIR / "classifier.ipynb"))
    assert edges(dag) == {
        ("load", "knn"), ("load", "svm"), ("load", "sweep"), ("svm", "sweep"),
        ("load", "choose"), ("knn", "choose"), ("svm", "choose"), ("sweep", "choose"),
    }  # fmt: skip
    assert topo_order(dag) == ["load", "knn", "svm", "sweep", "choose"]
    assert dag.warnings == ()


def test_cell_numbers_count_markdown() -> None:
    dag = dag_of([md("# t"), "%%step a\nx = 1", md("more"), "%%step b\ny = x"])
    assert [s.cell for s in dag.steps] == [2, 4]
    assert FIXTURES  # the shared fixtures exist


@pytest.mark.parametrize(("producers", "before", "expected"), [
    ([(1, "x", "a"), (3, "x", "c"), (2, "x", "b")], None, {"x": "c"}),
    ([(1, "x", "a"), (3, "x", "c"), (2, "x", "b")], 3, {"x": "b"}),
    ([(1, "x", "a"), (2, "y", "b")], 2, {"x": "a"}),
    ([], None, {}),
])
def test_last_producer_in_cell_order(producers: list[tuple[int, str, str]], before: int | None,
                                     expected: dict[str, str]) -> None:
    from nbflow.graph.resolve import last_producers

    assert last_producers(producers, before=before) == expected
