"""The panel while the catalog lags the event stream, in a real JupyterLab and Chromium.

The runs this lab starts write the catalog seconds after their events (``lagging/``'s
sitecustomize lengthens the recorder's batching), as a busy machine does. The panel
merges the two: what the events said a step reached is never taken back by an older
catalog read (a failed step showed "pending" again while its task's row was not written).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import jupyterlab
from test_panel import _notebook, open_notebook
from test_panel_runs import FAILING, WATCH, status_of

LAGGING = Path(__file__).parent / "lagging"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab-lag")
    work = root / "work"
    work.mkdir()
    _notebook(work / "failing.ipynb", FAILING)
    path = os.pathsep.join(p for p in (str(LAGGING), os.environ.get("PYTHONPATH")) if p)
    with jupyterlab(root, work, windowing="full",
                    extra_env={"PYTHONPATH": path, "NBFLOW_TEST_CATALOG_LAG": "3"}) as server:
        yield server


def test_what_the_events_showed_is_not_taken_back_by_a_late_catalog(page: Any, lab: dict) -> None:
    open_notebook(page, lab, "failing.ipynb")
    page.evaluate(WATCH)
    page.locator('[data-nbflow-panel] [data-nbflow-action="run"]').click()
    page.wait_for_selector('[data-nbflow-live][data-nbflow-state="failed"]', timeout=120_000)
    page.wait_for_function("""() => { const b = document.querySelector('[data-nbflow-badge="boom"]');
      return b && /stale: (?!not run before)/.test(b.textContent); }""", timeout=60_000)
    assert status_of(page) == {"ok": "succeeded", "boom": "failed", "after": "not-run"}
    seen = page.evaluate("window.__nbflowSeen")
    for key in ("badge ok", "node ok", "badge boom", "node boom"):
        states = [s.split(" ")[0] for s in seen[key]]
        order = {"not-run": 0, "pending": 0, "running": 1}
        stages = [order.get(s, 2) for s in states]
        assert stages == sorted(stages), f"{key} went back: {states}"
