"""``nbflow execute --events FILE``: the run's task events as JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

from nbbuild import make_notebook


def test_events_file_has_one_json_object_per_state_change(tmp_path: Path, nbflow) -> None:
    nb = make_notebook(["%load_ext nbflow", ("grid = [1, 2]", ["parameters"]),
                        "%%step a\nx = 1", "%%branch b --foreach grid --as g\ny = g + x",
                        "%%step c\nz = [t.y for t in b]"], tmp_path / "ev.ipynb")
    log = tmp_path / "events.jsonl"
    done = nbflow("execute", str(nb), "--events", str(log))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # the file got the events, stdout nothing
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["kind"] == "run-started" and events[0]["run"] == "ev/1"
    assert [s["name"] for s in events[0]["steps"]] == ["a", "b", "c"]
    assert events[-1] == {**events[-1], "kind": "run-finished", "status": "succeeded"}
    started = [(e["step"], e["index"]) for e in events if e["kind"] == "task-started"]
    assert sorted(started) == [("a", 0), ("b", 0), ("b", 1), ("c", 0)]
    assert all(e["task"] == f"ev/1/{e['step']}/{e['index']}" and e["pid"] > 0
               for e in events if e["kind"] == "task-started")
    assert [e["tasks"] for e in events if e["kind"] == "fan-out"] == [2]
    assert {e["step"]: e["status"] for e in events if e["kind"] == "step-finished"} == {
        "a": "succeeded", "b": "succeeded", "c": "succeeded"}

    again = nbflow("execute", str(nb), "--events", "-")
    assert again.returncode == 0, again.stderr
    events = [json.loads(line) for line in again.stdout.splitlines()]
    assert {e["status"] for e in events if e["kind"] == "task-finished"} == {"cached"}
    assert {e["status"] for e in events if e["kind"] == "step-finished"} == {"cached"}
    assert "events" not in nbflow("execute", "--help").stdout  # hidden: for programs
