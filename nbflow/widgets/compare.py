"""``CompareView``: two runs side by side — parameters, metrics, and how each step got its result."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w

from nbflow.client.history import Comparison, compare_runs
from nbflow.client.objects import Run
from nbflow.widgets import html as h


class CompareView(w.VBox):
    def __init__(self, a: Run, b: Run) -> None:
        self.runs = (a, b)
        self.comparison: Comparison = compare_runs(a, b)
        self.params = w.HTML()
        self.metrics = w.HTML()
        self.steps = w.HTML()
        super().__init__([self.params, self.metrics, self.steps])
        self.add_class("nbflow-compare")
        self.refresh()

    def refresh(self) -> None:
        a, b = self.runs
        self.comparison = c = compare_runs(a, b)
        pa, pb = escape(a.pathspec), escape(b.pathspec)
        changed = [d for d in c.params if d.changed]
        self.params.value = (
            f"<b>parameters</b> ({len(changed)} of {len(c.params)} differ)"
            + h.table(["parameter", pa, pb], [[d.name, _v(d.a), _v(d.b)] for d in c.params],
                      changed=[d.changed for d in c.params]))
        self.metrics.value = "<b>metrics</b>" + h.table(
            ["metric", pa, pb, "change"],
            [[d.name, _v(d.a), _v(d.b), _delta(d.a, d.b)] for d in c.metrics],
            changed=[d.changed for d in c.metrics],
        ) if c.metrics else '<b>metrics</b> <span class="nbflow-muted">none recorded</span>'
        self.steps.value = "<b>steps</b>" + h.table(
            ["step", pa, pb], [[s.name, s.a, s.b] for s in c.steps],
            changed=[s.a != s.b for s in c.steps])


def _v(value: Any) -> str:
    return "—" if value is None else h.short_value(value, 60)


def _delta(a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return ""
    diff = b - a
    return "=" if diff == 0 else f"{diff:+.4g}"
