"""The analyse and status handlers through a real jupyter_server (no kernel started)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nbbuild import build_notebook, make_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def cells_of(path: Path) -> list[dict[str, Any]]:
    """The cells as JupyterLab sends them (source as one string, with ids)."""
    nb = json.loads(path.read_text())
    return [{"cell_type": c["cell_type"], "id": c.get("id"), "metadata": c.get("metadata", {}),
             "source": "".join(c["source"]) if isinstance(c["source"], list) else c["source"]}
            for c in nb["cells"]]


def pipeline(root: Path) -> Path:
    return Path(shutil.copy(NOTEBOOKS / "pipeline.ipynb", root / "pipeline.ipynb"))


async def test_analyze_the_saved_notebook(api: Any, jp_root_dir: Path) -> None:
    cells = cells_of(pipeline(jp_root_dir))
    code, reply = await api("analyze", body={"path": "pipeline.ipynb", "cells": cells})
    assert code == 200, reply
    assert reply["flow"] == "pipeline"
    steps = {s["name"]: s for s in reply["steps"]}
    assert list(steps) == ["load", "double", "total", "sweep", "report"]
    assert steps["sweep"]["kind"] == "branch" and steps["sweep"]["foreach"] == "grid"
    assert steps["load"]["cell"] == 5 and steps["load"]["index"] == 4
    assert steps["load"]["cell_id"] == cells[4]["id"]
    assert steps["double"]["inputs"] == ["data", "scale"]
    assert steps["double"]["outputs"] == ["doubled"]
    assert sorted(map(tuple, reply["edges"])) == sorted([
        ("load", "double"), ("load", "total"), ("total", "sweep"), ("double", "report"),
        ("sweep", "report")])
    assert steps["report"]["upstream"] == ["double", "sweep"]
    assert reply["errors"] == []
    # never run: every step would run, and says so
    assert {s["fresh"] for s in reply["steps"]} == {False}
    assert {s["reason"] for s in reply["steps"]} == {"not run before"}
    params = {p["name"]: p for p in reply["parameters"]}
    assert params["n"] == {"name": "n", "default": 4, "type": "int", "required": False,
                           "source": "4"}
    assert params["grid"]["default"] == [1, 2, 3]
    assert params["label"]["type"] == "str" and params["label"]["source"] == "'demo'"


async def test_analyze_sees_an_unsaved_edit(api: Any, jp_root_dir: Path) -> None:
    path = pipeline(jp_root_dir)
    cells = cells_of(path)
    # in the browser only: `total` now also reads `doubled`
    cells[6]["source"] = "%%step total\ntotal = sum(data) + sum(doubled)"
    code, reply = await api("analyze", body={"path": "pipeline.ipynb", "cells": cells})
    assert code == 200, reply
    assert ["double", "total"] in reply["edges"]
    total = next(s for s in reply["steps"] if s["name"] == "total")
    assert total["upstream"] == ["load", "double"]
    assert "double" not in json.loads(path.read_text())["cells"][6]["source"]  # not saved


async def test_invalid_notebook_reports_each_error_with_its_cell(api: Any, jp_root_dir: Path
                                                                  ) -> None:
    nb = build_notebook([
        "%load_ext nbflow",
        "%%step load\nx = 1",
        "%%step load\ny = 2",           # cell 3: duplicate name
        "%%step fit --after nowhere\nz = x",  # cell 4: unknown --after
        "%%step broken --retry\nw = 1",   # cell 5: bad magic arguments
        "%%step last\nv = z + 1",
    ])
    (jp_root_dir / "bad.ipynb").write_text(json.dumps(nb))
    code, reply = await api("analyze", body={"path": "bad.ipynb", "cells": nb["cells"]})
    assert code == 200, reply
    by_cell = {e["cell"]: e for e in reply["errors"]}
    assert set(by_cell) == {3, 4, 5}, reply["errors"]
    assert by_cell[3]["index"] == 2 and "load" in by_cell[3]["message"]
    assert "nowhere" in by_cell[4]["message"] and by_cell[4]["step"] == "fit"
    assert by_cell[5]["hint"]
    assert all("Traceback" not in json.dumps(e) for e in reply["errors"])
    # the cells that read still make a picture; freshness cannot be told
    names = [s["name"] for s in reply["steps"]]
    assert "last" in names and "broken" not in names
    assert ["fit", "last"] in reply["edges"]
    assert {s["fresh"] for s in reply["steps"]} == {None}


async def test_syntax_error_points_at_its_cell(api: Any, jp_root_dir: Path) -> None:
    nb = build_notebook(["%load_ext nbflow", "%%step a\nx = (", "%%step b\ny = 1"])
    code, reply = await api("analyze", body={"path": "syntax.ipynb", "cells": nb["cells"]})
    assert code == 200, reply
    assert [e["cell"] for e in reply["errors"]] == [2]
    assert [s["name"] for s in reply["steps"]] == ["b"]


async def test_status_of_a_notebook_never_run(api: Any, jp_root_dir: Path,
                                              nbflow_home: Path) -> None:
    pipeline(jp_root_dir)
    code, reply = await api("status", path="pipeline.ipynb")
    assert code == 200, reply
    assert reply == {"flow": "pipeline", "run": None, "steps": {}}
    code, reply = await api("runs", path="pipeline.ipynb")
    assert code == 200 and reply["runs"] == []
    assert not nbflow_home.exists()  # reading never creates the home


async def test_bad_requests_are_json_errors(api: Any, jp_root_dir: Path) -> None:
    code, reply = await api("analyze", body={"cells": []})
    assert code == 400 and "path" in reply["message"] and reply["hint"]
    code, reply = await api("analyze", body={"path": "../../etc/x.ipynb", "cells": []})
    assert code == 400 and "outside" in reply["message"]
    code, reply = await api("analyze", body={"path": "a.ipynb", "cells": "nope"})
    assert code == 400 and "cells" in reply["message"]
    code, reply = await api("status", path="x.ipynb", run="other/1")
    assert code == 400 and "not a run of" in reply["message"]


async def test_requests_without_a_token_are_refused(jp_fetch: Any, jp_root_dir: Path) -> None:
    make_notebook(["%%step a\nx = 1"], jp_root_dir / "a.ipynb")
    requests = [("status", "GET", None), ("runs", "GET", None),
                ("analyze", "POST", {"path": "a.ipynb", "cells": []}),
                ("runs", "POST", {"path": "a.ipynb"})]
    for headers in ({"Authorization": ""}, {"Authorization": "token not-the-token"}):
        for endpoint, method, body in requests:
            response = await jp_fetch(
                "nbflow", "api", endpoint, method=method, headers=headers, raise_error=False,
                params={"path": "a.ipynb"}, body=None if body is None else json.dumps(body))
            assert response.code in (401, 403), (endpoint, headers, response.code)
            assert b"Traceback" not in response.body
    response = await jp_fetch("nbflow", "api", "status", params={"path": "a.ipynb"})
    assert response.code == 200  # the same request with the token
