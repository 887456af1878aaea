"""Runs started through the server: real ``nbflow execute`` processes and real kernels."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from nbbuild import make_notebook
from nbtest import query

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


async def follow(api: Any, handle: str, *, until: Any = None, limit: float = 240
                 ) -> dict[str, Any]:
    """Long-poll a run's events until it is done (or ``until(events)`` holds)."""
    events: list[dict[str, Any]] = []
    since, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        code, reply = await api(f"runs/{handle}/events", since=str(since), timeout="5")
        assert code == 200, reply
        assert [e["seq"] for e in reply["events"]] == list(range(since, reply["next"]))
        events += reply["events"]
        since = reply["next"]
        if reply["done"] or (until is not None and until(events)):
            return {**reply, "events": events}
    raise AssertionError(f"run {handle} did not finish: {events[-5:]}")


def kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind]


async def test_run_streams_events_then_is_cached_then_resumes_from_a_step(
        api: Any, jp_root_dir: Path, nbflow_home: Path) -> None:
    shutil.copy(NOTEBOOKS / "pipeline.ipynb", jp_root_dir / "pipeline.ipynb")
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "params": {"n": "5"}})
    assert code == 200, reply
    first = await follow(api, reply["handle"])
    assert first["returncode"] == 0, first["events"][-10:]
    run = first["run"]
    assert run == "pipeline/1" and reply["run"] in (None, run)
    finished = kinds(first["events"], "task-finished")
    assert sorted((e["step"], e["index"], e["status"]) for e in finished) == sorted(
        [("load", 0, "succeeded"), ("double", 0, "succeeded"), ("total", 0, "succeeded"),
         ("sweep", 0, "succeeded"), ("sweep", 1, "succeeded"), ("sweep", 2, "succeeded"),
         ("report", 0, "succeeded")])
    assert kinds(first["events"], "fan-out")[0] == {**kinds(first["events"], "fan-out")[0],
                                                    "step": "sweep", "tasks": 3}
    assert kinds(first["events"], "run-finished")[-1]["status"] == "succeeded"
    assert {e["step"]: e["status"] for e in kinds(first["events"], "step-finished")} == {
        s: "succeeded" for s in ("load", "double", "total", "sweep", "report")}
    assert any("pipeline/1" in e["text"] for e in kinds(first["events"], "output"))
    assert query(nbflow_home, "SELECT value FROM params WHERE name = 'n'") == [("5",)]

    code, status = await api("status", path="pipeline.ipynb")
    assert code == 200, status
    assert status["run"]["id"] == run and status["run"]["status"] == "succeeded"
    assert {s: v["status"] for s, v in status["steps"].items()} == {
        s: "succeeded" for s in ("load", "double", "total", "sweep", "report")}
    assert status["steps"]["sweep"]["tasks"] == 3 and status["steps"]["sweep"]["done"] == 3
    log = status["steps"]["report"]["log_path"]
    assert log == "/".join([".nbflow", "runs", "pipeline", "1", "report", "0", "notebook.ipynb"])
    assert (jp_root_dir / log).exists()
    code, logged = await api("log", task=f"{run}/report/0")
    assert code == 200 and logged["notebook_path"] == log and logged["error"] is None

    # analyse with the run's parameters: every step is fresh now
    cells = json.loads((jp_root_dir / "pipeline.ipynb").read_text())["cells"]
    code, analysis = await api("analyze", body={"path": "pipeline.ipynb", "cells": cells,
                                                "params": {"n": "5"}})
    assert code == 200 and {s["fresh"] for s in analysis["steps"]} == {True}, analysis
    # an unsaved edit of `double` makes it and `report` stale, with the reason
    cells[5]["source"] = "%%step double\ndoubled = [x * scale * 2 for x in data]"
    code, analysis = await api("analyze", body={"path": "pipeline.ipynb", "cells": cells,
                                                "params": {"n": "5"}})
    fresh = {s["name"]: (s["fresh"], s["reason"]) for s in analysis["steps"]}
    assert fresh["double"] == (False, "the step's code changed")
    assert fresh["report"][0] is False and fresh["load"] == (True, None)
    # another value of a parameter makes the steps that read it stale
    code, analysis = await api("analyze", body={"path": "pipeline.ipynb", "cells": cells,
                                                "params": {"n": "6"}})
    assert {s["name"]: s["reason"] for s in analysis["steps"]}["load"] == "parameter 'n' changed"

    code, reply = await api("runs", body={"path": "pipeline.ipynb", "params": {"n": "5"}})
    second = await follow(api, reply["handle"])
    assert second["returncode"] == 0 and second["run"] == "pipeline/2"
    assert {e["status"] for e in kinds(second["events"], "task-finished")} == {"cached"}
    code, status = await api("status", path="pipeline.ipynb")
    assert {v["status"] for v in status["steps"].values()} == {"cached"}
    assert status["steps"]["load"]["cached_from"] == "pipeline/1"

    # run from here: the latest run resumed from `total`
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "resume": None,
                                          "from": "total"})
    assert code == 200, reply
    third = await follow(api, reply["handle"])
    assert third["returncode"] == 0, third["events"][-10:]
    by_step = {e["step"]: e["status"] for e in kinds(third["events"], "step-finished")}
    assert by_step == {"load": "cloned", "double": "cloned", "total": "succeeded",
                       "sweep": "succeeded", "report": "succeeded"}
    code, history = await api("runs", path="pipeline.ipynb")
    assert [r["id"] for r in history["runs"]] == ["pipeline/3", "pipeline/2", "pipeline/1"]
    assert history["runs"][2]["params"]["n"] == 5
    assert {a["run"]: a["from"] for a in history["active"]} == {
        "pipeline/1": None, "pipeline/2": None, "pipeline/3": "total"}


SLOW = ["import time\n%load_ext nbflow",
        "%%step first\nx = 1",
        "%%step slow\ntime.sleep(120)\ny = x"]


async def test_cancel_stops_the_run_and_its_kernels(api: Any, jp_root_dir: Path,
                                                    nbflow_home: Path) -> None:
    make_notebook(SLOW, jp_root_dir / "slow.ipynb")
    code, reply = await api("runs", body={"path": "slow.ipynb"})
    assert code == 200, reply
    handle = reply["handle"]

    def slow_started(events: list[dict[str, Any]]) -> bool:
        return any(e["kind"] == "task-started" and e["step"] == "slow" for e in events)

    seen = await follow(api, handle, until=slow_started)
    pid = next(e["pid"] for e in kinds(seen["events"], "task-started") if e["step"] == "slow")
    assert psutil.pid_exists(pid)
    code, reply = await api(f"runs/{handle}/cancel", method="POST")
    assert code == 200 and reply["ok"], reply
    done = await follow(api, handle)
    assert done["returncode"] == 130, done["events"][-10:]
    assert kinds(done["events"], "run-finished")[-1]["status"] == "cancelled"
    run_id = int(done["run"].split("/")[1])
    assert query(nbflow_home, "SELECT status FROM runs WHERE run_id = ?", [run_id]) == [
        ("cancelled",)]
    assert query(nbflow_home, "SELECT status FROM tasks WHERE step = 'slow'") == [("cancelled",)]
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert not _alive(pid), "the task's kernel outlived the cancelled run"
    code, status = await api("status", path="slow.ipynb")
    assert status["run"]["status"] == "cancelled"
    assert status["steps"]["slow"]["status"] == "cancelled"
    code, reply = await api(f"runs/{handle}/cancel", method="POST")
    assert code == 200 and reply["already_finished"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_two_runs_of_one_notebook_at_once(api: Any, jp_root_dir: Path) -> None:
    make_notebook(["%load_ext nbflow", ("k = 1", ["parameters"]),
                   "%%step a\nimport time\ntime.sleep(1)\nv = k * 2"], jp_root_dir / "two.ipynb")
    replies = await asyncio.gather(
        api("runs", body={"path": "two.ipynb", "params": {"k": "1"}}),
        api("runs", body={"path": "two.ipynb", "params": {"k": "2"}}))
    assert [code for code, _ in replies] == [200, 200], replies
    handles = [reply["handle"] for _, reply in replies]
    assert handles[0] != handles[1]
    results = await asyncio.gather(*(follow(api, h) for h in handles))
    assert [r["returncode"] for r in results] == [0, 0]
    assert sorted(r["run"] for r in results) == ["two/1", "two/2"]
    code, history = await api("runs", path="two.ipynb")
    assert sorted(r["params"]["k"] for r in history["runs"]) == [1, 2]


async def test_bad_parameters_are_refused_before_anything_runs(
        api: Any, jp_root_dir: Path, nbflow_home: Path) -> None:
    shutil.copy(NOTEBOOKS / "pipeline.ipynb", jp_root_dir / "pipeline.ipynb")
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "params": {"n": "four"}})
    assert code == 400, reply
    assert "'n'" in reply["message"] and "int" in reply["message"], reply
    assert "n: int = 4" in reply["hint"]
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "params": {"nn": "4"}})
    assert code == 400 and "nn" in reply["message"] and "n" in reply["hint"], reply
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "params": {"n": "4"},
                                          "resume": ""})
    assert code == 400 and "--resume" in reply["message"], reply
    code, reply = await api("runs", body={"path": "pipeline.ipynb", "from": "total"})
    assert code == 400 and "no run to resume" in reply["message"], reply
    assert not nbflow_home.exists()  # nothing ran


async def test_an_invalid_notebook_is_refused_with_its_cells(api: Any, jp_root_dir: Path
                                                             ) -> None:
    make_notebook(["%load_ext nbflow", "%%step a\nx = 1", "%%step a\ny = x"],
                  jp_root_dir / "dup.ipynb")
    code, reply = await api("runs", body={"path": "dup.ipynb"})
    assert code == 400, reply
    assert 3 in [e["cell"] for e in reply["errors"]] and "already used" in json.dumps(reply)
    code, reply = await api("runs/0123abcd/events")
    assert code == 400 and "0123abcd" in reply["message"]


@pytest.mark.skipif(not hasattr(os, "killpg"), reason="POSIX signals")
async def test_a_run_refused_by_the_cli_still_ends_its_stream(api: Any, jp_root_dir: Path
                                                               ) -> None:
    path = make_notebook(["%load_ext nbflow", "%%step a\nx = 1"], jp_root_dir / "gone.ipynb")
    from nbflow.server.runs import RunManager, execute_argv
    from nbflow.store.home import Home

    manager = RunManager()
    argv = execute_argv(str(path), Home(str(jp_root_dir / ".nbflow")), params={"x": "1"},
                        resume=None, from_step=None)
    handle = await manager.start(argv, path="gone.ipynb", cwd=str(jp_root_dir))
    await asyncio.wait_for(handle.finished.wait(), 60)
    assert handle.returncode == 2
    reply = await manager.events(handle, 0, 0)
    assert reply["done"] and reply["events"][-1]["kind"] == "run-finished"
    assert any("x" in e["text"] for e in reply["events"] if e["kind"] == "output")


async def test_a_failed_step_comes_back_with_its_cell_traceback_and_log(
        api: Any, jp_root_dir: Path) -> None:
    make_notebook(["%load_ext nbflow", "%%step ok\nx = 1", "%%step boom\ny = x / 0",
                   "%%step after\nz = y"], jp_root_dir / "boom.ipynb")
    code, reply = await api("runs", body={"path": "boom.ipynb"})
    assert code == 200, reply
    done = await follow(api, reply["handle"])
    assert done["returncode"] == 1
    finished = {e["step"]: e["status"] for e in kinds(done["events"], "task-finished")}
    assert finished == {"ok": "succeeded", "boom": "failed"}
    assert {e["step"]: e["status"] for e in kinds(done["events"], "step-finished")} == {
        "ok": "succeeded", "boom": "failed", "after": "not-run"}
    assert any("ZeroDivisionError" in e["text"] for e in kinds(done["events"], "message"))
    code, status = await api("status", path="boom.ipynb")
    boom = status["steps"]["boom"]
    assert status["run"]["status"] == "failed"
    assert boom["status"] == "failed" and "cell 3" in boom["error"]
    assert "ZeroDivisionError" in boom["traceback"] and "Traceback" not in boom["error"]
    assert boom["task"] == f"{done['run']}/boom/0"
    assert (jp_root_dir / boom["log_path"]).exists()
    assert status["steps"]["after"]["status"] == "not-run"
    code, logged = await api("log", task=boom["task"])
    assert code == 200 and "ZeroDivisionError" in logged["error"]
    assert "notebook" not in logged  # only when asked for: it can be large
    # The executed notebook itself, for the lab to show (the home is a hidden folder the
    # contents API refuses to serve).
    code, logged = await api("log", task=boom["task"], notebook="1")
    assert code == 200, logged
    errors = [o for c in logged["notebook"]["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert [o["ename"] for o in errors] == ["ZeroDivisionError"]


async def test_cancel_right_after_start_still_records_a_cancelled_run(
        api: Any, jp_root_dir: Path, nbflow_home: Path) -> None:
    from nbflow.server.runs import RunManager, execute_argv
    from nbflow.store.home import Home

    path = make_notebook(SLOW, jp_root_dir / "early.ipynb")
    manager = RunManager()
    argv = execute_argv(str(path), Home(str(nbflow_home)), params={}, resume=None,
                        from_step=None)
    handle = await manager.start(argv, path="early.ipynb", cwd=str(jp_root_dir),
                                 wait_for_run=0)
    assert await manager.cancel(handle)  # before the driver has recorded its run
    await asyncio.wait_for(handle.finished.wait(), 120)
    assert handle.returncode == 130
    texts = "\n".join(e.get("text", "") for e in handle.events)
    assert "Traceback" not in texts, texts
    assert query(nbflow_home, "SELECT status FROM runs") == [("cancelled",)]
