"""Cross-flow lineage: what a task reads of other runs is recorded, and its cache key follows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nbbuild import make_notebook
from nbtest import EXAMPLES, query


def _status(home: Path, flow: str, run: int) -> dict[str, str]:
    return dict(query(home, "SELECT step, status FROM tasks WHERE flow = ? AND run_id = ?",
                      [flow, run]))


def _why_line(out: str, step: str) -> str:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [step])
    block = [lines[start]]
    block += [line for line in lines[start + 1:] if line.startswith(" ")][:5]
    return "\n".join(block)


def test_train_then_predict_over_three_train_runs(tmp_path: Path, nbflow, home: Path) -> None:
    for name in ("train.ipynb", "predict.ipynb"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    train, predict = str(tmp_path / "train.ipynb"), str(tmp_path / "predict.ipynb")
    assert nbflow("execute", train, check=True).returncode == 0           # train/1
    assert nbflow("execute", predict, check=True).returncode == 0         # predict/1
    assert _status(home, "predict", 1) == {"fetch": "succeeded", "predict": "succeeded"}

    # Nothing changed upstream: predict is reused whole, without --no-cache.
    assert nbflow("execute", predict, check=True).returncode == 0         # predict/2
    assert _status(home, "predict", 2) == {"fetch": "cached", "predict": "cached"}

    assert nbflow("execute", train, check=True).returncode == 0           # train/2 (cached tasks)
    why = nbflow("why", predict)
    assert why.returncode == 0, why.stderr
    fetch = _why_line(why.stdout, "fetch")
    assert "runs" in fetch and "upstream run train/2 replaces train/1" in fetch, why.stdout
    assert nbflow("execute", predict, check=True).returncode == 0         # predict/3
    # fetch read the new run; the model's bytes are the same, so predict is reused.
    assert _status(home, "predict", 3) == {"fetch": "succeeded", "predict": "cached"}

    # A failed train run does not replace the latest successful one.
    failed = nbflow("execute", train, "-p", "C", "-1.0")                   # train/3 fails
    assert failed.returncode != 0
    assert "reused" in _why_line(nbflow("why", predict).stdout, "fetch")

    assert nbflow("execute", train, "-p", "C", "0.5", check=True).returncode == 0  # train/4
    assert "upstream run train/4 replaces train/2" in nbflow("why", predict).stdout
    assert nbflow("execute", predict, check=True).returncode == 0         # predict/4
    assert _status(home, "predict", 4) == {"fetch": "succeeded", "predict": "succeeded"}

    from nbflow.client.objects import Run

    run = Run("predict/4", home=str(home))
    assert run.data.train_run == "train/4"
    task = run["fetch"].task
    reads = {(r["kind"], r["read"], r["name"], r["via"]) for r in task.lineage}
    assert ("run", "train/4", None, "Flow('train').latest_successful_run") in reads
    assert ("artifact", "train/4/fit/0", "model", "data") in reads
    assert ("artifact", "train/4/load/0", "holdout_index", "data") in reads
    assert {r["task"] for r in run.lineage} == {"predict/4/fetch/0"}
    assert run.upstream_runs == ["train/4"]
    model_hash = query(home, "SELECT hash FROM artifacts WHERE flow = 'train' AND run_id = 4 "
                             "AND name = 'model'")[0][0]
    assert ("artifact", "train", 4, "fit", 0, "model", model_hash) in query(
        home, "SELECT kind, read_flow, read_run, read_step, read_task_index, read_name, "
              "read_hash FROM lineage WHERE flow = 'predict' AND run_id = 4")
    # The manifest is the source of truth: it holds the same reads.
    manifest = json.loads((home / "runs/predict/4/fetch/0/manifest.json").read_text())
    assert {(e["kind"], e["flow"], e["run"]) for e in manifest["lineage"]} == {
        ("run", "train", 4), ("artifact", "train", 4)}
    # A cached task keeps its origin's lineage: predict/2's fetch read train/1.
    assert {r["read"] for r in Run("predict/2", home=str(home))["fetch"].task.lineage} >= {
        "train/1"}
    dump = nbflow("dump", "predict/4/fetch")
    assert dump.returncode == 0, dump.stderr
    assert "read run       train/4  (via Flow('train').latest_successful_run)" in dump.stdout
    assert "read artifact  train/4/fit/0 model  (via data)" in dump.stdout


def test_sql_and_pathspec_reads_are_lineage(tmp_path: Path, nbflow, home: Path) -> None:
    up = make_notebook(["import pandas as pd", "%%step make\ndf = pd.DataFrame({'v': [1, 2, 3]})"],
                       tmp_path / "up.ipynb")
    down = make_notebook([
        "import nbflow",
        "%%step total\ns = int(nbflow.sql(\"SELECT sum(v) AS s FROM artifact('up/1', 'df')\")"
        ".s[0])\nfirst = nbflow.Run('up/1').pathspec",
        "%%step dyn\nsource = 'u' + 'p'  # a flow name the analysis cannot read\n"
        "latest = nbflow.Flow(source).latest_successful_run.pathspec",
    ], tmp_path / "down.ipynb")
    assert nbflow("execute", str(up), check=True).returncode == 0
    assert nbflow("execute", str(down), check=True).returncode == 0
    from nbflow.client.objects import Run

    task = Run("down/1", home=str(home))["total"].task
    assert task.data.s == 6
    vias = {(r["kind"], r["read"], r["via"]) for r in task.lineage}
    assert ("artifact", "up/1/make/0", "sql") in vias
    assert ("run", "up/1", "Run('up/1')") in vias
    assert task.cache_parts["upstream"] == {"Run('up/1')": "up/1"}

    # The recorded lineage catches a read the analysis cannot resolve before it runs.
    assert nbflow("execute", str(down), check=True).returncode == 0
    assert _status(home, "down", 2) == {"total": "cached", "dyn": "cached"}
    assert nbflow("execute", str(up), check=True).returncode == 0
    why = nbflow("why", str(down))
    assert "upstream run up/2 replaces up/1" in _why_line(why.stdout, "dyn"), why.stdout
    assert "reused" in _why_line(why.stdout, "total")  # it reads up/1, which stays up/1
    assert nbflow("execute", str(down), check=True).returncode == 0
    assert _status(home, "down", 3) == {"total": "cached", "dyn": "succeeded"}
    assert Run("down/3", home=str(home)).data.latest == "up/2"
