"""``%%step --kernel NAME`` runs that step under another kernelspec."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from nbbuild import make_notebook
from nbtest import query


def test_step_runs_under_the_named_kernelspec(tmp_path: Path, nbflow, home: Path) -> None:
    spec_dir = tmp_path / "jupyter" / "kernels" / "other-env"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Other environment",
        "language": "python",
        "env": {"NBFLOW_TEST_KERNEL": "other-env"},
    }))
    nb = make_notebook([
        "import os",
        "%%step default\nwhere_default = os.environ.get('NBFLOW_TEST_KERNEL', 'python3')",
        "%%step other --kernel other-env\nwhere_other = os.environ.get('NBFLOW_TEST_KERNEL')",
    ], tmp_path / "kern.ipynb")
    done = nbflow("execute", str(nb), env={"JUPYTER_PATH": str(tmp_path / "jupyter")})
    assert done.returncode == 0, done.stderr
    from nbflow.client.objects import Run

    run = Run("kern/1", home=str(home))
    assert run.data.where_default == "python3"
    assert run.data.where_other == "other-env"
    modes = dict(query(home, "SELECT step, kernel_mode FROM tasks"))
    assert modes["default"] == "fork" and modes["other"] in ("fork", "spawn")


def test_unknown_kernelspec_is_a_clear_error(tmp_path: Path, nbflow) -> None:
    nb = make_notebook(["x = 1", "%%step s --kernel no-such-kernel\ny = x"], tmp_path / "k.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 1
    assert "no-such-kernel" in done.stderr and "step 's'" in done.stderr
    assert "Traceback (most recent call last)" not in done.stderr.split("FAILED")[0]
