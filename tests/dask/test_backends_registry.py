"""Backends by name: built-ins without entry points, a third-party one through a dist-info,
and ``--resources`` on a step (a Dask worker resource, a note in ``nbflow show``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import ROOT, nbflow_command

from nbflow.backends import BUILTIN, available, open_backend
from nbflow.errors import BackendError, MagicArgumentError
from nbflow.notebook.magics import parse_magic_line
from nbflow.run.options import RunOptions

TINY = ["%load_ext nbflow", "%%step one\nx = 1", "%%step two\ny = x + 1"]


def test_the_built_in_backends_need_no_entry_points():
    assert {"local", "dask"} <= set(available())
    assert open_backend(RunOptions(backend="local")).name == "local"
    assert open_backend(RunOptions(backend="dask")).name == "dask"


def test_an_unknown_backend_names_the_known_ones(monkeypatch):
    monkeypatch.delenv("NBFLOW_BACKEND", raising=False)
    with pytest.raises(BackendError, match=r"no such backend(.|\n)*dask, local"):
        open_backend(RunOptions(backend="ray"))
    monkeypatch.setenv("NBFLOW_BACKEND", "nope")
    with pytest.raises(BackendError, match="'nope'"):
        open_backend(RunOptions())


def test_dask_without_a_scheduler_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with pytest.raises(BackendError, match="needs a Dask scheduler") as caught:
        open_backend(RunOptions(backend="dask")).connect()
    assert "dask scheduler" in (caught.value.hint or "")


def _third_party(site: Path) -> None:
    (site / "echo_backend.py").write_text(
        "from nbflow.backends.local import LocalBackend\n\n"
        "class EchoBackend(LocalBackend):\n"
        "    name = 'echo'\n\n"
        "    def describe(self):\n"
        "        return 'the echo backend'\n")
    info = site / "echo_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nbflow.backends]\necho = echo_backend:EchoBackend\n")


def test_a_third_party_backend_is_found_through_its_entry_point(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _third_party(site)
    make_notebook(TINY, tmp_path / "tiny.ipynb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
           "NBFLOW_HOME": str(tmp_path / "home"), "NBFLOW_BACKEND": "echo"}
    done = subprocess.run([*nbflow_command(), "execute", "tiny.ipynb"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "the echo backend" in done.stderr
    assert set(BUILTIN) <= set(available())  # this process does not see it: no leakage


def test_resources_parse_into_dask_resources():
    magic = parse_magic_line('%%step fit --resources "GPU=1,MEMORY=8e9"')
    assert magic.resources == (("GPU", 1.0), ("MEMORY", 8e9))
    with pytest.raises(MagicArgumentError, match="is not NAME=AMOUNT"):
        parse_magic_line("%%step fit --resources GPU", cell=3)


def test_show_notes_that_resources_are_ignored_locally(tmp_path):
    make_notebook(["%load_ext nbflow", '%%step fit --resources "GPU=1"\nx = 1'],
                  tmp_path / "gpu.ipynb")
    done = subprocess.run([*nbflow_command(), "show", "gpu.ipynb"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--resources GPU=1 (Dask worker resources; ignored by --backend local)" in done.stdout
