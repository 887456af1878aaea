"""``RunView``: one recorded run — its DAG, steps, artifacts with previews, logs, notebook."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from nbflow.client.history import StepState, run_row, step_states
from nbflow.client.objects import Run
from nbflow.widgets import html as h
from nbflow.widgets.dag_svg import Node, dag_svg, format_seconds

PREVIEW_MAX_BYTES = 64 * 2**20  # larger DataFrames are described, not loaded
TABS = ("Steps", "Artifacts", "Logs", "Notebook")


class RunView(w.VBox):
    """Everything about one run; ``refresh()`` re-reads it (the history calls it while the
    run is in progress)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.states: list[StepState] = []
        self.header = w.HTML()
        self.dag = w.HTML()
        self.steps = w.HTML()
        self.task_picker = w.Dropdown(description="task", options=[], value=None)
        self.artifacts = w.HTML()
        self.artifact_picker = w.Dropdown(description="preview", options=[], value=None)
        self.preview = w.HTML()
        self.task_log = w.HTML()
        self.notebook = w.HTML()
        self.tabs = w.Tab(children=[
            self.steps,
            w.VBox([self.task_picker, self.artifacts, self.artifact_picker, self.preview]),
            w.VBox([self.task_picker, self.task_log]),
            self.notebook,
        ])
        for i, title in enumerate(TABS):
            self.tabs.set_title(i, title)
        self.task_picker.observe(lambda _: self._show_task(), names="value")
        self.artifact_picker.observe(lambda _: self._show_preview(), names="value")
        self.tabs.observe(lambda _: self._show_notebook(), names="selected_index")
        super().__init__([self.header, self.dag, self.tabs])
        self.add_class("nbflow-run-view")
        self.refresh()

    def refresh(self) -> None:
        self.run = Run(self.run.pathspec, home=self.run.home)
        self.states = step_states(self.run)
        self.header.value = self._header()
        self.dag.value = dag_svg(self._nodes(), title=self.run.pathspec)
        self.steps.value = self._steps_table()
        keys = [f"{s.name}/{t.index}" for s in self.states for t in s.tasks]
        if list(self.task_picker.options) != keys:
            current = self.task_picker.value
            self.task_picker.options = keys
            self.task_picker.value = current if current in keys else (keys[0] if keys else None)
        if self.tabs.selected_index == TABS.index("Notebook"):
            self._show_notebook()

    # -- summary ---------------------------------------------------------------------

    def _header(self) -> str:
        row = run_row(self.run)
        lines = [
            f"<b>{escape(self.run.pathspec)}</b> {h.badge(row.status)} "
            f"started {h.local_time(row.started_at)} · {format_seconds(row.duration_s)}",
            f'<span class="nbflow-muted">{escape(row.notebook_path)}</span>',
        ]
        if row.params:
            lines.append(f"parameters: <code>{escape(h.pairs(row.params))}</code>")
        if row.metrics:
            lines.append(f"metrics: <code>{escape(h.pairs(row.metrics))}</code>")
        if row.tags:
            lines.append("tags: " + ", ".join(f"<code>{escape(t)}</code>" for t in row.tags))
        if row.error:
            lines.append(h.pre(row.error, error=True))
        return "<br>".join(lines)

    def _nodes(self) -> list[Node]:
        return [Node(s.name, tuple(s.parents), s.state, s.seconds, s.kind, s.done,
                     len(s.tasks)) for s in self.states]

    def _steps_table(self) -> str:
        rows = []
        for s in self.states:
            origins = sorted({t.cached_from for t in s.tasks if t.cached_from})
            rows.append([
                f"<b>{escape(s.name)}</b>", escape(s.kind), str(s.cell), h.badge(s.state),
                f"{s.done}/{len(s.tasks)}", format_seconds(s.seconds),
                escape(", ".join(origins[:3]) + (" …" if len(origins) > 3 else "")),
            ])
        failed = [(s.name, t) for s in self.states for t in s.tasks if t.status == "failed"]
        errors = "".join(
            f"<b>{escape(f'{self.run.pathspec}/{name}/{t.index}')} failed</b>"
            f"{h.pre(t.error or '(no traceback recorded)', error=True)}"
            for name, t in failed)
        return h.table(["step", "kind", "cell", "state", "tasks", "time", "cached from"],
                       rows, raw=True) + errors

    # -- one task --------------------------------------------------------------------

    def _task(self) -> Any:
        key = self.task_picker.value
        if not key:
            return None
        step, index = key.rsplit("/", 1)
        return self.run[step][int(index)]

    def _show_task(self) -> None:
        task = self._task()
        if task is None:
            self.artifacts.value = self.task_log.value = ""
            self.artifact_picker.options = []
            return
        records = task.artifacts
        self.artifacts.value = h.table(
            ["name", "type", "size", "shape", "metric", "value"],
            [[r.name, r.type.rsplit(".", 1)[-1], _size(r.size), r.shape or "",
              "" if r.metric is None else h.short_value(r.metric),
              r.repr if r.persisted else f"not stored: {r.reason}"] for r in records.values()],
        ) if records else '<span class="nbflow-muted">no artifacts</span>'
        self.artifact_picker.options = list(records)
        self.artifact_picker.value = next(iter(records), None)
        self._show_preview()
        self.task_log.value = _log_html(task)

    def _show_preview(self) -> None:
        task, name = self._task(), self.artifact_picker.value
        if task is None or not name:
            self.preview.value = ""
            return
        self.preview.value = preview_html(task, name)

    def _show_notebook(self) -> None:
        if self.tabs.selected_index != TABS.index("Notebook"):
            return
        path = self.run.executed_notebook
        try:
            import nbformat

            nb = nbformat.reads(self.run.home.read_text(path), as_version=4)
        except Exception:
            state = "is still running" if self.run.status == "running" else "has none"
            self.notebook.value = (f'<span class="nbflow-muted">no executed notebook yet: '
                                   f"{escape(self.run.pathspec)} {state}</span>")
            return
        self.notebook.value = (f'<div class="nbflow-muted">{escape(path)}</div>'
                               + h.notebook_html(nb))


def preview_html(task: Any, name: str) -> str:
    """A DataFrame's head, else the stored repr; with type, shape and schema."""
    record = task.artifacts[name]
    info = f"<b>{escape(name)}</b> <code>{escape(record.type)}</code> {_size(record.size)}"
    if record.shape:
        info += f" · shape {escape(str(tuple(record.shape)))}"
    if not record.persisted:
        return info + h.pre(f"not stored: {record.reason}", error=True)
    if record.type.endswith("DataFrame") and record.size <= PREVIEW_MAX_BYTES:
        try:
            frame = getattr(task.data, name)
            return info + frame.head(10).to_html(max_cols=20, border=0, classes="nbflow-table")
        except Exception as exc:  # the preview is best effort; the record still shows
            info += f' <span class="nbflow-muted">(cannot load: {escape(str(exc))})</span>'
    if record.schema:
        info += h.table(["column", "dtype"], list(record.schema.items()))
    return info + h.pre(record.repr)


def _log_html(task: Any) -> str:
    parts = [f'<div class="nbflow-muted">{escape(task.pathspec)} · {escape(task.status)} · '
             f"pid {task.pid or '-'} · log {escape(task.log_path)}</div>"]
    for title, text, error in (("stdout", _stream(task, "stdout"), False),
                               ("stderr", _stream(task, "stderr"), True),
                               ("error", task.error or "", True)):
        if text:
            parts.append(f"<b>{title}</b>{h.pre(text, error=error)}")
    if len(parts) == 1:
        parts.append('<span class="nbflow-muted">no output</span>')
    return "".join(parts)


def _stream(task: Any, name: str) -> str:
    try:
        return str(getattr(task, name))
    except Exception:  # a running task has no log yet (the client raises StoreError then)
        return ""


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
