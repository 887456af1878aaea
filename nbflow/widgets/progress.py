"""``RunProgress``: the live view of one headless run, fed by the driver's progress events.

The driver calls the observer methods (``run_started``, ``fan_out``, ``started``,
``finished``, ``message``, ``close``) from its worker threads; every widget change
happens under one lock. A ticker thread redraws elapsed times once a second while the
run goes and stops with it. Task logs and the failing traceback are read through the
client API when asked for or when a task fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from nbflow.widgets import html as h
from nbflow.widgets.dag_svg import Node, dag_svg, format_seconds
from nbflow.widgets.runview import _stream

if TYPE_CHECKING:
    from nbflow.client.objects import Home

TICK_S = 1.0
_MESSAGES_KEPT = 200


@dataclass
class _Step:
    name: str
    kind: str
    parents: tuple[str, ...]
    total: int = 0  # tasks; 0 until a branch fans out
    running: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)
    cached: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)
    first_start: float | None = None
    last_end: float | None = None

    @property
    def state(self) -> str:
        if self.failed and not self.running:
            return "failed"
        if self.running:
            return "running"
        if self.total and len(self.done) >= self.total:
            return "cached" if self.cached >= self.done else "succeeded"
        return "running" if self.done else "waiting"

    def seconds(self, now: float) -> float | None:
        if self.first_start is None:
            return None
        end = now if self.state == "running" or self.last_end is None else self.last_end
        return end - self.first_start


class _Events:
    """Forwards the driver's progress events; its ``close`` (no more events) must not
    close the widget."""

    def __init__(self, view: RunProgress) -> None:
        self.run_started = view.run_started
        self.message = view.message
        self.fan_out = view.fan_out
        self.started = view.started
        self.finished = view.finished
        self.close = view._render


class RunProgress(w.VBox):
    """The DAG with step states, a row per step (foreach progress, time, log), the failure."""

    def __init__(self, notebook: str = "", *, home: Home | str | None = None) -> None:
        self.notebook = notebook
        self.home = home
        self.pathspec: str | None = None
        self.status = "starting"
        self.result: Any = None
        self.exception: BaseException | None = None
        self.messages: list[str] = []
        self.steps: dict[str, _Step] = {}
        self._lock = threading.RLock()
        self._finished = threading.Event()
        self._t0 = time.monotonic()
        self._ended: float | None = None
        self._errors_shown: set[tuple[str, int]] = set()
        self.header = w.HTML()
        self.dag = w.HTML()
        self.rows = w.VBox()
        self.error = w.HTML()
        self.log_picker = w.Dropdown(description="task log", options=[], value=None)
        self.task_log = w.HTML()
        self.log_picker.observe(lambda _: self._show_log(), names="value")
        self.message_box = w.HTML()
        details = w.Accordion(children=[w.VBox([self.log_picker, self.task_log]), self.message_box])
        details.set_title(0, "task logs")
        details.set_title(1, "messages")
        self.details = details
        super().__init__([w.HTML(h.STYLE), self.header, self.dag, self.rows, self.error, details])
        self.add_class("nbflow-run-progress")
        self._render()

    # -- running ---------------------------------------------------------------------

    def start(self, target: Callable[[RunProgress], Any]) -> threading.Thread:
        """Run ``target(self)`` (which calls the driver with this widget as an observer) in a
        daemon thread; the view updates as events arrive and the cell returns at once."""
        def body() -> None:
            try:
                self.result = target(self)
                status = getattr(getattr(self.result, "summary", None), "status", "succeeded")
            except BaseException as exc:  # shown in the view: nobody else would see it
                self.exception = exc
                status = "error"
            self._end(status)

        thread = threading.Thread(target=body, name="nbflow-run", daemon=True)
        threading.Thread(target=self._tick, name="nbflow-run-ticker", daemon=True).start()
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended; True if it did within ``timeout``."""
        return self._finished.wait(timeout)

    def _tick(self) -> None:
        while not self._finished.wait(TICK_S):
            self._render()

    def _end(self, status: str) -> None:
        with self._lock:
            self.status = status
            self._ended = time.monotonic()
            for step in self.steps.values():
                step.running.clear()
        self._fetch_errors()
        self._render()
        self._finished.set()

    @property
    def events(self) -> _Events:
        """The observer to pass to ``driver.execute(..., observers=(view.events,))``."""
        return _Events(self)

    # -- observer protocol (called from the driver's threads) ---------------------------

    def run_started(self, pathspec: str, dag: Any) -> None:
        with self._lock:
            self.pathspec = pathspec
            self.status = "running"
            self.steps = {
                s.name: _Step(s.name, s.kind, tuple(dag.parents[s.name]),
                              total=1 if s.kind == "step" else 0)
                for s in dag.steps
            }
            self.rows.children = [self._row(s) for s in self.steps.values()]
        from nbflow.widgets.history import wake_histories

        wake_histories()
        self._render()

    def message(self, text: str) -> None:
        with self._lock:
            self.messages = [*self.messages, text][-_MESSAGES_KEPT:]
            self.message_box.value = h.pre("\n".join(self.messages))

    def fan_out(self, step: str, n: int) -> None:
        with self._lock:
            self.steps[step].total = n
        self._render()

    def started(self, step: str, index: int, pid: int, mode: str, attempt: int = 0) -> None:
        with self._lock:
            state = self.steps[step]
            state.running.add(index)
            state.failed.discard(index)
            if state.first_start is None:
                state.first_start = time.monotonic()
            self._add_task(step, index)
        self._render()

    def finished(self, step: str, index: int, status: str, seconds: float, note: str = "") -> None:
        with self._lock:
            state = self.steps[step]
            state.running.discard(index)
            now = time.monotonic()
            begun = now - seconds  # kernel start included, as the terminal counts it
            state.first_start = begun if state.first_start is None else min(state.first_start,
                                                                           begun)
            state.last_end = now
            if status in ("succeeded", "cached", "cloned"):
                state.done.add(index)
                if status != "succeeded":
                    state.cached.add(index)
            elif status == "failed" and not note.startswith("retrying"):
                state.failed.add(index)
            self._add_task(step, index)
        self._render()

    def close(self) -> None:
        self._finished.set()  # stops the ticker
        super().close()

    # -- drawing ---------------------------------------------------------------------

    def states(self) -> dict[str, str]:
        with self._lock:
            return {name: s.state for name, s in self.steps.items()}

    def _render(self) -> None:
        with self._lock:
            now = self._ended or time.monotonic()
            elapsed = format_seconds(now - self._t0)
            title = self.pathspec or f"run of {self.notebook}"
            self.header.value = (f"<b>{escape(title)}</b> {h.badge(self.status)} "
                                 f'<span class="nbflow-muted">{elapsed}</span>')
            nodes = [Node(s.name, s.parents, s.state, s.seconds(now), s.kind, len(s.done),
                          s.total) for s in self.steps.values()]
            self.dag.value = dag_svg(nodes, title=title) if nodes else ""
            for row, step in zip(self.rows.children, self.steps.values(), strict=False):
                self._update_row(row, step, now)
            if self.exception is not None:
                self.error.value = h.pre(f"{type(self.exception).__name__}: {self.exception}",
                                         error=True)

    def _row(self, step: _Step) -> w.HBox:
        label = w.HTML(layout=w.Layout(width="240px"))
        bar = w.IntProgress(min=0, max=max(step.total, 1), layout=w.Layout(width="220px"))
        count = w.HTML(layout=w.Layout(width="90px"))
        elapsed = w.HTML(layout=w.Layout(width="90px"))
        button = w.Button(description="log", disabled=True, tooltip=f"show {step.name}'s log",
                          layout=w.Layout(width="60px"))
        button.on_click(lambda _b, name=step.name: self.show_log(name))
        return w.HBox([label, bar, count, elapsed, button])

    def _update_row(self, row: w.HBox, step: _Step, now: float) -> None:
        label, bar, count, elapsed, button = row.children
        label.value = f"{h.badge(step.state)} <b>{escape(step.name)}</b>"
        bar.max = max(step.total, 1)
        bar.value = min(len(step.done), bar.max)
        bar.bar_style = {"failed": "danger", "succeeded": "success", "cached": "success",
                         "running": "info"}.get(step.state, "")
        count.value = f"{len(step.done)}/{step.total or '?'} tasks"
        elapsed.value = format_seconds(step.seconds(now))
        button.disabled = step.first_start is None

    # -- logs and errors ---------------------------------------------------------------

    def _add_task(self, step: str, index: int) -> None:
        key = f"{step}/{index}"
        if key not in self.log_picker.options:
            self.log_picker.options = [*self.log_picker.options, key]

    def show_log(self, step: str) -> None:
        """Open the log of ``step``'s first failed task (else its first task)."""
        with self._lock:
            state = self.steps[step]
            index = min(state.failed) if state.failed else 0
        key = f"{step}/{index}"
        self.details.selected_index = 0
        if self.log_picker.value == key:
            self._show_log()
        elif key in self.log_picker.options:
            self.log_picker.value = key

    def _task(self, key: str) -> Any:
        from nbflow.client.objects import Run

        step, index = key.split("/")
        return Run(self.pathspec or "", home=self.home)[step][int(index)]

    def _show_log(self) -> None:
        key = self.log_picker.value
        if not key or not self.pathspec:
            self.task_log.value = ""
            return
        try:
            task = self._task(key)
            parts = [f'<div class="nbflow-muted">{escape(task.status)} · '
                     f"{escape(task.log_path)}</div>"]
            for title, text, error in (("stdout", _stream(task, "stdout"), False),
                                       ("stderr", _stream(task, "stderr"), True),
                                       ("error", task.error or "", True)):
                if text:
                    parts.append(f"<b>{title}</b>{h.pre(text, error=error)}")
            self.task_log.value = "".join(parts) if len(parts) > 1 else parts[0] + "(no output yet)"
        except Exception as exc:  # a task still starting has no row or log yet
            self.task_log.value = h.pre(f"log of {key} not available yet: {exc}")

    def _fetch_errors(self) -> None:
        """Show each failed task's traceback, as recorded in the catalog."""
        if not self.pathspec:
            return
        with self._lock:
            failed = [(s.name, i) for s in self.steps.values() for i in sorted(s.failed)]
        texts = []
        for step, index in failed:
            try:
                error = self._task(f"{step}/{index}").error
            except Exception:
                error = None
            texts.append(f"{self.pathspec}/{step}/{index} failed\n{error or '(no traceback)'}")
        if texts:
            with self._lock:
                self.error.value = h.pre("\n\n".join(texts), error=True)
                self._errors_shown = set(failed)
