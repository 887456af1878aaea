"""`nbflow show` output: text for people, JSON for programs, DOT for graphviz."""

from __future__ import annotations

import json
from pathlib import Path

from nbflow.graph.build import Dag, build_dag
from nbflow.graph.render import render_dot, render_json, render_text
from nbflow.notebook.reader import read_notebook

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def classifier() -> Dag:
    return build_dag(read_notebook(FIXTURE_DIR / "classifier.ipynb"))


def test_text_lists_steps_in_run_order_with_their_data() -> None:
    text = render_text(classifier())
    assert text.splitlines()[0].startswith("classifier  (")
    assert "  test_size: float = 0.2   [cell 2]" in text
    order = [text.index(f"\n  {name}  [") for name in ("load", "knn", "svm", "sweep", "choose")]
    assert order == sorted(order)
    assert "  sweep  [branch, cell 6, --foreach grid --as c]" in text
    assert "    after:   load, svm" in text
    assert "    inputs:  branch sweep: sweep" in text
    assert "             step knn: knn" in text
    assert "    outputs: sweep (the list of per-task namespaces); per task: model, score" in text
    assert "warnings" not in text


def test_text_shows_options_mutations_and_warnings() -> None:
    from nbbuild import build_notebook

    from nbflow.notebook.reader import spec_from_notebook

    cells = ["lst = []", "%%step a --retry 2 --timeout 30 --no-cache --kernel py\nlst.append(1)",
             "%%step b\nlst = 1", "%%step c\nm = lst"]  # fmt: skip
    dag = build_dag(spec_from_notebook(build_notebook(cells), "w.ipynb"))
    text = render_text(dag)
    assert "[step, cell 2, --no-cache, --kernel py, --retry 2, --timeout 30]" in text
    assert "    mutates: lst" in text
    assert "parameters: none" in text
    assert "warnings:\n  - cells 2 and 3" in text


def test_json_round_trips_the_graph() -> None:
    data = json.loads(render_json(classifier()))
    assert data["flow"] == "classifier"
    assert data["order"] == ["load", "knn", "svm", "sweep", "choose"]
    assert ["sweep", "choose"] in data["edges"]
    sweep = next(s for s in data["steps"] if s["name"] == "sweep")
    assert (sweep["kind"], sweep["cell"], sweep["foreach"], sweep["as"]) == (
        "branch",
        6,
        "grid",
        "c",
    )
    assert sweep["inputs"]["X_train"] == {"source": "step", "step": "load"}
    assert sweep["inputs"]["grid"] == {"source": "parameter", "step": None}
    assert sweep["parents"] == ["load", "svm"] and sweep["children"] == ["choose"]
    params = {p["name"]: p for p in data["parameters"]}
    assert params["grid"] == {"name": "grid", "type": "list", "required": False,
                              "default": [0.1, 1.0, 10.0], "cell": 2}  # fmt: skip


def test_dot_is_a_graphviz_digraph() -> None:
    dot = render_dot(classifier())
    assert dot.startswith('digraph "classifier" {')
    assert '"sweep" [label="sweep\\ncell 6\\nforeach grid", shape=box3d' in dot
    assert '"load" -> "knn" [label="X_train, y_train"];' in dot
    assert '"load" -> "sweep" [label="X_test, X_train, y_test, +1"];' in dot
    assert dot.rstrip().endswith("}")
    assert dot.count("->") == 8
