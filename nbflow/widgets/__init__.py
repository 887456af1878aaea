"""ipywidgets views of nbflow runs: ``RunHistory`` (the runs table) and ``RunProgress``
(one run, live). They read only through ``nbflow.client``; ``dag_svg`` draws a DAG."""

from __future__ import annotations

from nbflow.widgets.history import RunHistory, show_history
from nbflow.widgets.progress import RunProgress

__all__ = ["RunHistory", "RunProgress", "show_history"]
