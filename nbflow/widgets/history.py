"""``RunHistory``: the runs table with filters; one selected run in detail, two compared.

The table is a native multi-select list (arrow keys move, Shift+arrow selects a second
run), one aligned line per run with a status symbol. While any listed run is running a
thread re-reads the catalog every ``interval`` seconds (at least one: readers that poll
faster starve the writers) and stops when none is, or when the widget is closed. Every
read opens and closes the catalog; nothing holds a connection.
"""

from __future__ import annotations

import threading
import weakref
from html import escape
from typing import Any

import ipywidgets as w

from nbflow.client.history import RunRow, flows, list_runs
from nbflow.client.objects import Home, Run, open_home
from nbflow.widgets import html as h
from nbflow.widgets.compare import CompareView
from nbflow.widgets.dag_svg import SYMBOLS, format_seconds
from nbflow.widgets.runview import RunView

MIN_INTERVAL_S = 1.0
ALL_FLOWS = "all flows"
ANY_STATUS = "any status"
STATUSES = (ANY_STATUS, "running", "succeeded", "failed", "cancelled", "crashed")
_HINT = ('<span class="nbflow-muted">Select a run to see its DAG, artifacts and logs; '
         "select two (Shift or Ctrl) to compare them.</span>")
_LIVE: weakref.WeakSet[RunHistory] = weakref.WeakSet()


def wake_histories() -> None:
    """A run started in this kernel: open histories refresh and poll while it goes."""
    for history in list(_LIVE):
        history.wake()


def run_label(row: RunRow) -> str:
    """One aligned line of the runs table."""
    started = h.local_time(row.started_at)[:16]
    extra = " │ ".join(part for part in (
        h.pairs(row.params, 16), h.pairs(row.metrics, 10),
        " ".join(f"#{t}" for t in row.tags)) if part)
    return (f"{SYMBOLS.get(row.status, '?')} {row.pathspec:<18} {row.status:<10} {started:<16} "
            f"{format_seconds(row.duration_s):>9}  {extra}")


HEADER = f"  {'run':<18} {'status':<10} {'started':<16} {'time':>9}  parameters │ metrics │ tags"


class RunHistory(w.VBox):
    """``RunHistory(flow=None)``: every run (of ``flow``, or of all flows), newest first."""

    def __init__(self, flow: str | None = None, *, home: Home | str | None = None,
                 interval: float = 2.0, limit: int = 200) -> None:
        self.home = open_home(home)
        self.interval = max(MIN_INTERVAL_S, float(interval))
        self.limit = limit
        self.rows: list[RunRow] = []
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._lock = threading.RLock()
        self._quiet = False  # set while the table's options are replaced
        self._statuses: dict[str, str] = {}  # pathspec -> status at the last refresh
        known = flows(self.home)
        if flow and flow not in known:
            known.append(flow)
        self.flow = w.Dropdown(options=[ALL_FLOWS, *known], value=flow or ALL_FLOWS,
                               description="flow")
        self.status = w.Dropdown(options=STATUSES, value=ANY_STATUS, description="status")
        self.search = w.Text(placeholder="parameter, metric or tag", description="filter",
                             continuous_update=True)
        self.refresh_button = w.Button(description="refresh", icon="refresh",
                                       tooltip="re-read the catalog")
        self.summary = w.HTML()
        self.table = w.SelectMultiple(options=[], value=(), rows=8,
                                      layout=w.Layout(width="100%"))
        self.table.add_class("nbflow-runs")
        self.detail = w.VBox([w.HTML(_HINT)])
        for control in (self.flow, self.status, self.search):
            control.observe(lambda _: self.refresh(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.table.observe(lambda _: self._selected(), names="value")
        super().__init__([
            w.HTML(h.STYLE),
            w.HBox([self.flow, self.status, self.search, self.refresh_button]),
            self.summary,
            w.HTML(f'<div class="nbflow-mono" style="white-space: pre"><b>{escape(HEADER)}</b>'
                   "</div>"),
            self.table,
            self.detail,
        ])
        self.add_class("nbflow-run-history")
        _LIVE.add(self)
        self.refresh()

    # -- reading ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the runs; keep the selection; refresh the detail of a running run."""
        with self._lock:
            flow = None if self.flow.value == ALL_FLOWS else self.flow.value
            status = None if self.status.value == ANY_STATUS else self.status.value
            rows = list_runs(self.home, flow=flow, status=status, limit=self.limit)
            needle = self.search.value.strip().lower()
            self.rows = [r for r in rows if needle in run_label(r).lower()] if needle else rows
            options = [(run_label(r), r.pathspec) for r in self.rows]
            if list(self.table.options) != options:
                selected = self.table.value
                self._quiet = True
                try:
                    self.table.options = options
                    self.table.value = tuple(v for v in selected if v in dict(options).values())
                finally:
                    self._quiet = False
                self.table.rows = min(max(len(options), 3), 12)
                if self.table.value != selected:
                    self._selected()
            running = sum(r.status == "running" for r in self.rows)
            self.summary.value = self._summary(running)
            statuses = {r.pathspec: r.status for r in rows}
            shown = set(self.table.value)
            if any(statuses.get(p) == "running" or statuses.get(p) != self._statuses.get(p)
                   for p in shown):
                self._detail_refresh()  # a selected run is going, or has just ended
            self._statuses = statuses
            if any(status == "running" for status in statuses.values()):
                self._poll()

    def _summary(self, running: int) -> str:
        text = f"{len(self.rows)} run(s) in {escape(self.home.url)}"
        if running:
            text += f" · {running} in progress, refreshing every {self.interval:g} s"
        return f'<span class="nbflow-muted">{text}</span>'

    def _detail_refresh(self) -> None:
        for child in self.detail.children:
            if isinstance(child, (RunView, CompareView)):
                try:
                    child.refresh()
                except Exception as exc:  # shown in place; the table keeps refreshing
                    self.detail.children = [w.HTML(h.pre(f"cannot refresh: {exc}", error=True))]

    # -- selection -------------------------------------------------------------------

    def _selected(self) -> None:
        if self._quiet:
            return
        chosen = list(self.table.value)
        try:
            if len(chosen) == 1:
                view: w.Widget = RunView(Run(chosen[0], home=self.home))
            elif len(chosen) == 2:
                older, newer = sorted(chosen, key=lambda p: [i for i, r in enumerate(self.rows)
                                                             if r.pathspec == p][0], reverse=True)
                view = CompareView(Run(older, home=self.home), Run(newer, home=self.home))
            elif chosen:
                view = w.HTML('<span class="nbflow-muted">Select one run to inspect it or two '
                              f"to compare them ({len(chosen)} are selected).</span>")
            else:
                view = w.HTML(_HINT)
        except Exception as exc:  # e.g. a run deleted meanwhile: say so in place
            view = w.HTML(h.pre(f"cannot show {', '.join(chosen)}: {exc}", error=True))
        for old in self.detail.children:
            old.close()
        self.detail.children = [view]

    def select(self, *pathspecs: str) -> None:
        """Select runs by pathspec (what a click or the keyboard does)."""
        self.table.value = tuple(pathspecs)

    # -- polling ---------------------------------------------------------------------

    def wake(self) -> None:
        """Refresh now, and keep polling while runs are in progress."""
        try:
            self.refresh()
        except Exception:  # a wake-up must never break the run that sent it
            pass

    def _poll(self) -> None:
        if self._poller is not None and self._poller.is_alive():
            return
        self._poller = threading.Thread(target=self._poll_loop, name="nbflow-history",
                                        daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        failures = 0
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
                failures = 0
            except Exception as exc:  # e.g. the catalog is busy: try again, then give up
                failures += 1
                self.summary.value = h.pre(f"refresh failed: {exc}", error=True)
                if failures >= 5:
                    return
                continue
            if not any(r.status == "running" for r in self.rows):
                return

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.is_alive()

    def close(self) -> None:
        self._stop.set()
        _LIVE.discard(self)
        for child in self.detail.children:
            child.close()
        super().close()


def show_history(flow: str | None = None, **kwargs: Any) -> RunHistory:
    """Build and display a ``RunHistory`` (what ``%nbflow history`` does)."""
    from IPython.display import display

    history = RunHistory(flow, **kwargs)
    display(history)
    return history
