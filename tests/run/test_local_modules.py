"""The notebook folder's own modules are part of the code of the tasks that import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nbbuild import make_notebook
from nbtest import query

from nbflow.notebook.modules import local_modules


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        past = time.time() - 60  # a file written in the last 2 s is hashed every time
        os.utime(path, (past, past))


def statuses(home: Path, run_id: int) -> dict[str, str]:
    return dict(query(home, "SELECT step, status FROM tasks WHERE run_id = ?", [run_id]))


def test_an_edited_local_module_reruns_the_steps_that_import_it(tmp_path: Path, nbflow,
                                                                 home: Path) -> None:
    _write(tmp_path, {
        "helpers.py": "from pkg import util\n\ndef f(x):\n    return x + util.g()\n",
        "pkg/__init__.py": "",
        "pkg/util.py": "from .consts import K\n\ndef g():\n    return K\n",
        "pkg/consts.py": "K = 10\n",
    })
    nb = make_notebook([
        "import json",
        "%%step a\nimport helpers\ny = helpers.f(1)",
        "%%step b\nfrom pkg import util\nz = util.g()",
        "%%step c\nw = 1",
    ], tmp_path / "mods.ipynb")
    shown = nbflow("show", str(nb)).stdout
    assert "modules: helpers.py, pkg/__init__.py, pkg/consts.py, pkg/util.py (their code" in shown
    assert shown.count("modules:") == 2, shown  # a and b; c imports nothing of the folder
    assert nbflow("execute", str(nb)).returncode == 0
    assert nbflow("execute", str(nb)).returncode == 0
    assert set(statuses(home, 2).values()) == {"cached"}

    # reached through `from pkg import util` and util's relative import
    _write(tmp_path, {"pkg/consts.py": "K = 20\n"})
    why = nbflow("why", str(nb))
    assert why.returncode == 0, why.stderr
    assert why.stdout.count("file pkg/consts.py changed") == 2, why.stdout
    assert nbflow("execute", str(nb)).returncode == 0
    assert statuses(home, 3) == {"a": "succeeded", "b": "succeeded", "c": "cached"}
    from nbflow.client.objects import Run

    assert (Run("mods/3", home=str(home)).data.y, Run("mods/3", home=str(home)).data.z) == (21, 20)

    _write(tmp_path, {"helpers.py": "from pkg import util\n\ndef f(x):\n    return -x\n"})
    assert nbflow("execute", str(nb)).returncode == 0
    assert statuses(home, 4) == {"a": "succeeded", "b": "cached", "c": "cached"}
    assert Run("mods/4", home=str(home)).data.y == -1


def test_only_the_folders_own_modules_are_followed(tmp_path: Path) -> None:
    _write(tmp_path, {
        "top.py": "import json, os.path\nimport missing_module\nfrom deep.inner import leaf\n",
        "deep/inner/leaf.py": "from .. import up\nfrom ..sibling import *\ndef f():\n"
                              "    import lazy  # imported inside a function still counts\n",
        "deep/up.py": "",
        "deep/sibling.py": "",
        "lazy.py": "this is not python (",  # its hash still counts; it is not followed
        "unused.py": "",
    })
    found = local_modules(["%load_ext nbflow\nimport top"], str(tmp_path))
    assert [os.path.relpath(p, tmp_path) for p in found] == [
        "deep/inner/leaf.py", "deep/sibling.py", "deep/up.py", "lazy.py", "top.py"]
    assert local_modules(["import json\nx = 1", "not python ("], str(tmp_path)) == []
