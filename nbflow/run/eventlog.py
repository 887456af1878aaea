"""A run's progress as JSON lines, for programs that follow a run (the lab server).

A ``Progress`` observer: each task state change becomes one JSON object on one line,
written and flushed as it happens (``nbflow execute --events FILE|-``). Every event has
``seq`` (0, 1, 2, …), ``kind``, ``time`` (epoch seconds) and ``run`` (``FLOW/N``); kinds:

- ``run-started``: ``steps`` ([{name, kind, parents}]), ``notebook``
- ``message``: ``text`` (what the terminal shows: warnings, failures, tracebacks)
- ``fan-out``: ``step``, ``tasks`` (a branch's task count, once known)
- ``task-started``: ``step``, ``index``, ``task`` (``FLOW/N/STEP/I``), ``pid``, ``mode``, ``attempt``
- ``task-finished``: ``step``, ``index``, ``task``, ``status``, ``seconds``, ``note``
- ``step-finished``: ``step``, ``status`` (at the end of the run, one per step)
- ``run-finished``: ``status``, ``notebook_path`` (the executed notebook)
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, TextIO

_REUSED = ("cached", "cloned")


class EventLog:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.run: str | None = None
        self._seq = 0
        self._lock = threading.Lock()
        self._tasks: dict[str, dict[int, str]] = {}  # step -> index -> last status

    def _emit(self, kind: str, **fields: Any) -> None:
        with self._lock:
            event = {"seq": self._seq, "kind": kind, "time": time.time(), "run": self.run,
                     **fields}
            self._seq += 1
            self.stream.write(json.dumps(event, default=str) + "\n")
            self.stream.flush()

    def _task(self, step: str, index: int) -> str:
        return f"{self.run}/{step}/{index}"

    # -- Progress observer ------------------------------------------------------------

    def run_started(self, pathspec: str, dag: Any) -> None:
        self.run = pathspec
        steps = [{"name": s.name, "kind": s.kind, "parents": list(dag.parents[s.name])}
                 for s in dag.steps]
        self._emit("run-started", steps=steps, notebook=dag.spec.path)

    def message(self, text: str) -> None:
        self._emit("message", text=text)

    def fan_out(self, step: str, n: int) -> None:
        self._emit("fan-out", step=step, tasks=n)

    def started(self, step: str, index: int, pid: int, mode: str, attempt: int = 0) -> None:
        self._emit("task-started", step=step, index=index, task=self._task(step, index),
                   pid=pid, mode=mode, attempt=attempt)

    def finished(self, step: str, index: int, status: str, seconds: float, note: str = "") -> None:
        self._tasks.setdefault(step, {})[index] = status
        self._emit("task-finished", step=step, index=index, task=self._task(step, index),
                   status=status, seconds=seconds, note=note)

    def close(self) -> None:
        """No more task events (the run itself ends with ``run_finished``)."""

    # -- the end ----------------------------------------------------------------------

    def run_finished(self, status: str, step_status: dict[str, str] | None = None,
                     notebook_path: str | None = None) -> None:
        """One ``step-finished`` per step, then ``run-finished``."""
        for step, state in (step_status or {}).items():
            self._emit("step-finished", step=step, status=self._step_word(step, state))
        self._emit("run-finished", status=status, notebook_path=notebook_path)

    def _step_word(self, step: str, state: str) -> str:
        """The scheduler's step state as a task status word (or ``not-run``)."""
        tasks = list(self._tasks.get(step, {}).values())
        if state == "succeeded" and tasks and all(t in _REUSED for t in tasks):
            return "cloned" if all(t == "cloned" for t in tasks) else "cached"
        return {"waiting": "not-run", "skipped": "not-run"}.get(state, state)
