"""The read side against an S3 home (moto): ``nbflow why``, ``nbflow catalog rebuild``, the
history widget and the client API. Runs use the local backend: only the home is remote."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from daskcluster import process_env
from nbtest import EXAMPLES, nbflow_command


def nbflow(tmp_path: Path, s3_home: str, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*nbflow_command(), *args], capture_output=True, text=True,
                          cwd=tmp_path, env={**process_env({}), "NBFLOW_HOME": s3_home},
                          timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.timeout(900)
def test_why_rebuild_widget_and_client_read_an_s3_home(s3, s3_home, tmp_path, monkeypatch):
    shutil.copy(EXAMPLES / "parameters.ipynb", tmp_path)
    shutil.copy(EXAMPLES / "params.yaml", tmp_path)
    ran = nbflow(tmp_path, s3_home, "execute", "parameters.ipynb")
    assert f"executed notebook: {s3_home}/runs/parameters/1/notebook.ipynb" in ran.stderr, ran.stderr

    why = nbflow(tmp_path, s3_home, "why", "parameters.ipynb").stdout
    assert why.count("reused  from parameters/1") == 3, why

    catalog = tmp_path / ".nbflow" / "catalog.duckdb"
    catalog.unlink()  # lost: everything needed to rebuild it is in S3
    rebuilt = nbflow(tmp_path, s3_home, "catalog", "rebuild")
    assert "1 run(s)" in rebuilt.stdout + rebuilt.stderr
    assert "parameters/1 succeeded" in " ".join(
        nbflow(tmp_path, s3_home, "runs", "parameters.ipynb").stdout.split())

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBFLOW_HOME", s3_home)
    import nbflow as api
    from nbflow.widgets import RunHistory

    run = api.Flow("parameters").latest_successful_run
    assert run is not None and run.pathspec == "parameters/1"
    history = RunHistory(home=s3_home)
    try:
        assert [value for _, value in history.table.options] == ["parameters/1"]
        history.table.value = ("parameters/1",)
        assert "train" in str(history.detail.children)  # the run's detail: its steps
    finally:
        history.close()
    assert os.path.exists(catalog)
