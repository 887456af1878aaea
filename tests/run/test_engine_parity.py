"""The direct task engine and a forked ipykernel give the same run: artifacts, cache keys,
catalog rows and step outputs, for the example and test notebooks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from nbtest import EXAMPLES, ROOT, query, run_nbflow

NOTEBOOKS = [EXAMPLES / "classifier.ipynb", EXAMPLES / "parameters.ipynb",
             ROOT / "tests" / "notebooks" / "pipeline.ipynb"]


def _run(nb: Path, engine: str, tmp_path: Path) -> Path:
    place = tmp_path / engine
    place.mkdir()
    shutil.copy(nb, place / nb.name)
    for extra in nb.parent.glob("*.yaml"):
        shutil.copy(extra, place / extra.name)
    home = place / ".nbflow"
    done = run_nbflow("execute", nb.name, "--max-workers", "2", home=home, cwd=place,
                      env={"NBFLOW_TASK_ENGINE": engine})
    assert done.returncode == 0, done.stderr
    return home


def _artifacts(home: Path) -> list[tuple[object, ...]]:
    return query(home, "SELECT step, task_index, name, type, hash, size, format, repr, "
                       "shape, schema, metric, persisted, reason FROM artifacts "
                       "ORDER BY step, task_index, name")


def _tasks(home: Path) -> list[tuple[object, ...]]:
    return query(home, "SELECT step, task_index, foreach_element, status, cache_key, "
                       "kernel_mode FROM tasks ORDER BY step, task_index")


def _step_outputs(home: Path) -> dict[str, list[object]]:
    """Each step cell's outputs in the run's executed notebook (text only, no timings)."""
    nb = json.loads(next(home.glob("runs/*/1/notebook.ipynb")).read_text())
    found = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbflow", {})
        if cell["cell_type"] == "code" and meta:
            found[str(meta)] = [
                {k: v for k, v in o.items() if k in ("output_type", "name", "text", "data")}
                for o in cell.get("outputs", [])]
    return found


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_direct_engine_matches_a_forked_kernel(nb: Path, tmp_path: Path) -> None:
    direct, kernel = _run(nb, "direct", tmp_path), _run(nb, "kernel", tmp_path)
    assert _artifacts(direct) == _artifacts(kernel)
    assert _artifacts(direct), "the notebook stored no artifact: nothing was compared"
    assert _tasks(direct) == _tasks(kernel)
    assert _step_outputs(direct) == _step_outputs(kernel)
