"""Runs from the nbflow panel in a real JupyterLab and Debian's Chromium, beyond a plain run.

One lab serves every test here; each test opens its own notebook. A failed step shows its
cell and traceback and its log opens as a document; the parameters form refuses a bad
value as `-p` does and a good one reaches the history; "run from here" on a node and on a
badge resumes the latest run from that step (or the run picked in the history), and a failed
step never shows the freshness of before its run; two runs at once stay apart; the history
follows a run while it goes; a reloaded page reattaches to its run; the panel is readable
at the default sidebar width; a run never touches the notebook file. Steps that must still
be going while the test looks wait on a gate file the test creates (no sleeps, no timing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import TOKEN, jupyterlab
from nbtest import EXAMPLES
from test_panel import (
    _kernel_metadata,
    _notebook,
    dirty,
    nodes,
    open_notebook,
    readable,
    save_screenshot,
    set_source,
    wait_nodes,
)

FAILING = ["%load_ext nbflow", "%%step ok\nx = 1",
           "%%step boom\nz = x + 1\nprint('about to fail')\nraise ValueError(f'boom at x={x}')",
           "%%step after\ny = z * 2"]
REUSED = {"cached", "cloned"}  # what a resumed run's upstream steps come back as


def _gated(path: Path, gate: Path) -> None:
    """A notebook whose step `wait` runs until the test creates ``gate`` (its `first` is
    its own, or another such notebook's would be reused from the cache)."""
    _notebook(path, ["import os, time\n%load_ext nbflow", f"%%step first\nx = 1\nnotebook = {path.stem!r}",
                     f"%%step wait\nwhile not os.path.exists({str(gate)!r}):\n"
                     "    time.sleep(0.1)\ny = x + 1"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    import nbformat

    root = tmp_path_factory.mktemp("lab-runs")
    work = root / "work"
    work.mkdir()
    params = nbformat.read(EXAMPLES / "parameters.ipynb", as_version=4)
    nbformat.write(_kernel_metadata(params), work / "parameters.ipynb")
    _notebook(work / "failing.ipynb", FAILING)
    for name in ("two", "reload"):
        _gated(work / f"{name}.ipynb", root / f"{name}.gate")
    with jupyterlab(root, work, windowing="full") as server:
        yield server


def api(lab: dict[str, Any], endpoint: str) -> Any:
    url = f"{lab['url']}/nbflow/api/{endpoint}{'&' if '?' in endpoint else '?'}token={TOKEN}"
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def origin_run(lab: dict[str, Any], run: str) -> int | None:
    """The run a resumed run cloned its tasks from, as the catalog records it."""
    from nbflow.store.catalog import Catalog
    from nbflow.store.home import Home

    home = Home(str(lab["work"] / ".nbflow"))
    flow, _, number = run.partition("/")
    rows = Catalog(home.catalog_path, home).execute_read(
        "SELECT origin_run FROM runs WHERE flow = ? AND run_id = ?", [flow, int(number)])
    return rows[0][0] if rows else None


def cell_index(page: Any, prefix: str) -> int:
    return int(page.evaluate("""(p) => window.jupyterapp.shell.currentWidget.content.widgets
      .findIndex(c => c.model.sharedModel.getSource().startsWith(p))""", prefix))


def scroll_to(page: Any, index: int) -> None:
    page.evaluate(f"window.jupyterapp.shell.currentWidget.content.scrollToItem({index}, 'start')")


def badge(page: Any, step: str) -> Any:
    """The step's badge, scrolled into view (the windowed notebook renders only what shows)."""
    scroll_to(page, cell_index(page, f"%%step {step}"))
    found = page.locator(f'[data-nbflow-badge="{step}"]')
    found.wait_for(timeout=10_000)
    return found


def newest_run_ends(page: Any, cards: int, state: str) -> Any:
    """The live card of the run just started (the panel had ``cards``; the newest is on
    top), once it has reached ``state``."""
    page.wait_for_function(f"() => document.querySelectorAll('[data-nbflow-live]').length "
                           f"=== {cards + 1}", timeout=30_000)
    page.wait_for_function(f"() => document.querySelector('[data-nbflow-live]').dataset"
                           f".nbflowState === {state!r}", timeout=120_000)
    return page.locator("[data-nbflow-live]").first


def status_of(page: Any) -> dict[str, str]:
    return {name: n["status"] for name, n in nodes(page).items()}


def file_state(path: Path) -> tuple[int, bytes]:
    return path.stat().st_mtime_ns, path.read_bytes()


# Every state a badge or DAG node is left in at the end of a task (what could be painted):
# its status and its freshness text, per step, in order.
WATCH = """() => {
  const seen = window.__nbflowSeen = {};
  const look = () => {
    for (const el of document.querySelectorAll('[data-nbflow-badge], [data-nbflow-panel] [data-nbflow-node]')) {
      const badge = el.dataset.nbflowBadge !== undefined;
      const fresh = badge ? el.querySelector('.nbflow-fresh') : el.querySelector('title');
      const state = `${el.dataset.nbflowStatus} ${fresh ? fresh.textContent.split('\\n').pop() : ''}`;
      const list = (seen[`${badge ? 'badge' : 'node'} ${el.dataset.nbflowBadge ?? el.dataset.nbflowNode}`] ??= []);
      if (list[list.length - 1] !== state) list.push(state);
    }
  };
  new MutationObserver(look).observe(document.body,
    {subtree: true, childList: true, attributes: true, characterData: true});
}"""


def test_a_failed_step_shows_its_cell_traceback_and_opens_its_executed_notebook(
        page: Any, lab: dict) -> None:
    open_notebook(page, lab, "failing.ipynb")
    page.evaluate(WATCH)
    page.locator('[data-nbflow-panel] [data-nbflow-action="run"]').click()
    page.wait_for_selector('[data-nbflow-live][data-nbflow-state="failed"]', timeout=120_000)
    page.wait_for_selector('[data-nbflow-node="boom"][data-nbflow-status="failed"]',
                           timeout=10_000)
    assert status_of(page) == {"ok": "succeeded", "boom": "failed", "after": "not-run"}
    failure = page.locator('[data-nbflow-failure="boom"]')
    failure.wait_for(timeout=10_000)
    text = failure.inner_text()
    assert "boom failed" in text and "cell 3" in text
    assert "ValueError" in text and "boom at x=1" in text
    assert "Traceback" in text or "raise ValueError" in text, text
    assert badge(page, "boom").get_attribute("data-nbflow-status") == "failed"
    assert badge(page, "after").get_attribute("data-nbflow-status") == "not-run"
    # Once it failed, boom never went back to another status, nor said it had not run
    # (the freshness of before the run) while the freshness after it was being read.
    page.wait_for_function("""() => { const b = document.querySelector('[data-nbflow-badge="boom"]');
      return b && /stale: (?!not run before)/.test(b.textContent); }""", timeout=30_000)
    seen = page.evaluate("window.__nbflowSeen")
    for key in ("badge boom", "node boom"):
        states = seen[key]
        failed = next(i for i, s in enumerate(states) if s.startswith("failed "))
        assert all(s.startswith("failed ") and "not run before" not in s
                   for s in states[failed:]), (key, states)
    save_screenshot(page.locator(".jp-Notebook .jp-Cell").filter(
        has=page.locator('[data-nbflow-badge="boom"]')), "badge-failed.png")
    readable(page)
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-failed.png")
    assert not dirty(page)

    # Its log link opens the task's executed notebook as a document of its own.
    before = page.evaluate("[...window.jupyterapp.shell.widgets('main')].length")
    failure.locator("[data-nbflow-log]").click()
    page.wait_for_function(f"""() => {{
      const all = [...window.jupyterapp.shell.widgets('main')];
      const log = all.find(w => w.context && w.context.path.includes('failing/1/boom/0'));
      return all.length > {before} && log && log.context.isReady &&
        log.node.querySelector('.jp-OutputArea-output');
    }}""", timeout=30_000)
    shown = page.evaluate("""() => {
      const log = [...window.jupyterapp.shell.widgets('main')]
        .find(w => w.context && w.context.path.includes('failing/1/boom/0'));
      return {current: window.jupyterapp.shell.currentWidget === log, label: log.title.label,
              kernel: !!(log.sessionContext && log.sessionContext.session),
              readOnly: log.content.model.readOnly && log.content.widgets.every(c => c.readOnly),
              text: log.node.innerText, source: log.content.widgets.map(
                c => c.model.sharedModel.getSource()).join('\\n')};
    }""")
    assert shown["current"], "the executed notebook did not come to the front"
    assert "about to fail" in shown["text"] and "boom at x=1" in shown["text"]
    assert "raise ValueError" in shown["source"]
    assert shown["label"] == "failing-1-boom-0.ipynb"
    assert not shown["kernel"], "opening a log started a kernel"
    assert shown["readOnly"], "the executed notebook opened editable"
    assert not dirty(page)


def test_the_parameters_form_checks_types_as_p_does_and_its_run_shows_them(
        page: Any, lab: dict) -> None:
    notebook = lab["work"] / "parameters.ipynb"
    saved = file_state(notebook)
    open_notebook(page, lab, "parameters.ipynb")
    page.locator('[data-nbflow-panel] [data-nbflow-action="params"]').click()
    form = page.locator("[data-nbflow-params]")
    form.wait_for(timeout=5_000)
    values = {name: form.locator(f'input[name="{name}"]').input_value()
              for name in ("learning_rate", "epochs", "optimizer", "verbose", "layers")}
    assert values == {"learning_rate": "0.1", "epochs": "5", "optimizer": "'sgd'",
                      "verbose": "False", "layers": "[32, 16]"}
    readable(page)
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-idle.png")

    # Text for an int: refused with the words `-p` uses, and nothing starts.
    cli = subprocess.run(
        [sys.executable, "-m", "nbflow", "execute", str(notebook), "-p", "epochs", "abc",
         "--home", str(lab["out"] / "cli-home")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert cli.returncode == 2, cli.stderr
    said = cli.stderr.splitlines()[0].split(": ", 2)[-1]  # after "error: NOTEBOOK: "
    assert "expects int, got 'abc'" in said, cli.stderr
    form.locator('input[name="epochs"]').fill("abc")
    form.locator('button[type="submit"]').click()
    refused = page.locator("[data-nbflow-run-error]")
    refused.wait_for(timeout=30_000)
    assert said in refused.inner_text()
    assert page.locator("[data-nbflow-live]").count() == 0
    assert api(lab, "runs?path=parameters.ipynb") == {"runs": [], "active": []}

    form.locator('input[name="epochs"]').fill("3")
    form.locator('input[name="learning_rate"]').fill("0.5")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector('[data-nbflow-live][data-nbflow-state="succeeded"]', timeout=120_000)
    assert page.locator("[data-nbflow-run-error]").count() == 0
    row = page.locator('[data-nbflow-run="parameters/1"]')
    row.wait_for(timeout=10_000)
    shown = row.inner_text()
    assert "epochs=3" in shown and "learning_rate=0.5" in shown, shown
    assert api(lab, "runs?path=parameters.ipynb")["runs"][0]["params"]["epochs"] == 3
    readable(page)
    # Browsing, typing in the form and running never made the notebook dirty or wrote it.
    assert not dirty(page)
    assert file_state(notebook) == saved, "the run modified the notebook file"


def test_run_from_here_on_a_node_and_on_a_badge_resumes_from_that_step(
        page: Any, lab: dict) -> None:
    notebook = lab["work"] / "failing.ipynb"
    open_notebook(page, lab, "failing.ipynb")
    if not api(lab, "runs?path=failing.ipynb")["runs"]:  # this test alone: fail it first
        page.locator('[data-nbflow-panel] [data-nbflow-action="run"]').click()
        page.wait_for_selector('[data-nbflow-live][data-nbflow-state="failed"]', timeout=120_000)
    wait_nodes(page, "n.nbflowNode !== 'boom' || n.nbflowStatus === 'failed'", timeout=10_000)
    first = api(lab, "runs?path=failing.ipynb")["runs"][0]["id"]
    # Fix the step, then run from it on its DAG node: the notebook is saved first.
    boom = cell_index(page, "%%step boom")
    set_source(page, boom, "%%step boom\nz = x + 1\nprint('fixed')")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.model.dirty")
    cards = page.locator("[data-nbflow-live]").count()
    page.locator('[data-nbflow-node="boom"] [data-nbflow-run-from]').click()
    card = newest_run_ends(page, cards, "succeeded")
    assert "from boom" in card.inner_text()
    second = card.get_attribute("data-nbflow-live")
    assert second != first
    # The card ends a moment before the latest statuses are fetched: wait for the new run's.
    wait_nodes(page, "({ok: ['cached', 'cloned'].includes(n.nbflowStatus), "
                     "boom: n.nbflowStatus === 'succeeded', "
                     "after: n.nbflowStatus === 'succeeded'})[n.nbflowNode]")
    statuses = status_of(page)
    assert statuses["ok"] in REUSED and statuses["boom"] == "succeeded" and \
        statuses["after"] == "succeeded", statuses
    assert not dirty(page) and "print('fixed')" in notebook.read_text()
    resumed = api(lab, f"status?path=failing.ipynb&run={second}")["steps"]
    assert {s: v["status"] for s, v in resumed.items()} == statuses

    # From the badge of the last step: only it runs again.
    saved = file_state(notebook)
    cards = page.locator("[data-nbflow-live]").count()
    badge(page, "after").locator("[data-nbflow-run-from]").click()
    card = newest_run_ends(page, cards, "succeeded")
    assert "from after" in card.inner_text() and card.get_attribute("data-nbflow-live") != second
    wait_nodes(page, "n.nbflowNode === 'after' ? n.nbflowStatus === 'succeeded' : "
                     "['cached', 'cloned'].includes(n.nbflowStatus)")
    statuses = status_of(page)
    assert statuses["ok"] in REUSED and statuses["boom"] in REUSED and \
        statuses["after"] == "succeeded", statuses
    assert badge(page, "after").get_attribute("data-nbflow-status") == "succeeded"
    assert badge(page, "boom").get_attribute("data-nbflow-status") in REUSED
    assert file_state(notebook) == saved, "the run modified the notebook file"

    # Selecting the failed run in the history shows its statuses on the DAG and the badges.
    page.locator(f'[data-nbflow-run="{first}"]').click()
    wait_nodes(page, "n.nbflowStatus === {ok: 'succeeded', boom: 'failed', after: 'not-run'}"
                     "[n.nbflowNode]", timeout=10_000)
    page.wait_for_function("() => (document.querySelector('[data-nbflow-badge=\"boom\"]') || "
                           "{dataset: {}}).dataset.nbflowStatus === 'failed'", timeout=10_000)
    assert badge(page, "after").get_attribute("data-nbflow-status") == "not-run"
    page.locator(f'[data-nbflow-run="{first}"]').click()  # back to the latest
    wait_nodes(page, "n.nbflowNode !== 'after' || n.nbflowStatus === 'succeeded'",
               timeout=10_000)
    assert badge(page, "boom").get_attribute("data-nbflow-status") in REUSED

    # With a past run picked in the history, "run from here" resumes that run, not the latest.
    latest = api(lab, "runs?path=failing.ipynb")["runs"][0]["id"]
    page.locator(f'[data-nbflow-run="{first}"]').click()
    wait_nodes(page, "n.nbflowNode !== 'boom' || n.nbflowStatus === 'failed'", timeout=10_000)
    node = page.locator('[data-nbflow-node="boom"] [data-nbflow-run-from]')
    assert f"resume {first} from boom" in node.locator("title").text_content()
    cards = page.locator("[data-nbflow-live]").count()
    node.click()
    card = newest_run_ends(page, cards, "succeeded")
    resumed = card.get_attribute("data-nbflow-live")
    assert resumed not in {first, latest}
    assert f"failing/{origin_run(lab, resumed)}" == first, (resumed, first, latest)


def test_two_runs_at_once_stay_apart_and_the_history_follows_them(page: Any, lab: dict) -> None:
    gate = lab["out"] / "two.gate"
    notebook = lab["work"] / "two.ipynb"
    saved = file_state(notebook)
    history_calls: list[str] = []
    page.on("request", lambda r: history_calls.append(r.url)
            if "/nbflow/api/runs?" in r.url and r.method == "GET" else None)
    open_notebook(page, lab, "two.ipynb")
    run = page.locator('[data-nbflow-panel] [data-nbflow-action="run"]')
    run.click()
    page.wait_for_selector("[data-nbflow-live]", timeout=30_000)
    run.click()
    page.wait_for_function("() => document.querySelectorAll('[data-nbflow-live]').length === 2",
                           timeout=30_000)
    # Both are recorded and go: the history shows them running without a click.
    for n in (1, 2):
        page.wait_for_selector(f'[data-nbflow-run="two/{n}"] .nbflow-status-running',
                               timeout=60_000)
    page.wait_for_selector('[data-nbflow-node="wait"][data-nbflow-status="running"]',
                           timeout=60_000)
    cards = page.locator("[data-nbflow-live]")
    runs = {cards.nth(i).get_attribute("data-nbflow-live") for i in range(2)}
    assert runs == {"two/1", "two/2"}
    readable(page)
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-running.png")
    # The history polls while runs go, but not in a tight loop (at most every second).
    import time

    calls, start = len(history_calls), time.monotonic()
    page.wait_for_timeout(4_000)
    polled, seconds = len(history_calls) - calls, time.monotonic() - start
    assert 1 <= polled <= seconds + 1, (polled, seconds)

    # Cancel the newer one; the older one, released, succeeds: each card keeps its own end.
    page.locator('[data-nbflow-live="two/2"] [data-nbflow-cancel]').click()
    page.wait_for_selector('[data-nbflow-live="two/2"][data-nbflow-state="cancelled"]',
                           timeout=90_000)
    assert page.locator('[data-nbflow-live="two/1"]').get_attribute(
        "data-nbflow-state") == "running"
    gate.write_text("go")
    page.wait_for_selector('[data-nbflow-live="two/1"][data-nbflow-state="succeeded"]',
                           timeout=90_000)
    page.wait_for_selector('[data-nbflow-run="two/1"] .nbflow-status-succeeded', timeout=10_000)
    page.wait_for_selector('[data-nbflow-run="two/2"] .nbflow-status-cancelled', timeout=10_000)
    assert page.locator('[data-nbflow-live="two/2"]').get_attribute(
        "data-nbflow-state") == "cancelled"
    # Selecting each run in the history shows its own statuses on the DAG.
    page.locator('[data-nbflow-run="two/1"]').click()
    wait_nodes(page, "n.nbflowStatus === 'succeeded'", timeout=10_000)
    page.locator('[data-nbflow-run="two/2"]').click()
    wait_nodes(page, "n.nbflowNode !== 'wait' || n.nbflowStatus !== 'succeeded'",
               timeout=10_000)
    assert nodes(page)["first"]["status"] in {"succeeded"} | REUSED
    assert not dirty(page)
    assert file_state(notebook) == saved, "a run modified the notebook file"


def test_a_reloaded_page_reattaches_to_its_run(page: Any, lab: dict) -> None:
    gate = lab["out"] / "reload.gate"
    open_notebook(page, lab, "reload.ipynb")
    page.locator('[data-nbflow-panel] [data-nbflow-action="run"]').click()
    page.wait_for_selector('[data-nbflow-node="wait"][data-nbflow-status="running"]',
                           timeout=60_000)
    run = page.locator("[data-nbflow-live]").get_attribute("data-nbflow-live")
    open_notebook(page, lab, "reload.ipynb")  # a new page load
    page.wait_for_selector(f'[data-nbflow-live="{run}"][data-nbflow-state="running"]',
                           timeout=30_000)
    page.wait_for_selector('[data-nbflow-node="wait"][data-nbflow-status="running"]',
                           timeout=30_000)
    assert page.locator('[data-nbflow-node="first"]').get_attribute(
        "data-nbflow-status") == "succeeded"
    assert page.locator('[data-nbflow-panel] [data-nbflow-action="cancel"]').is_enabled()
    gate.write_text("go")
    page.wait_for_selector(f'[data-nbflow-live="{run}"][data-nbflow-state="succeeded"]',
                           timeout=90_000)
    wait_nodes(page, "n.nbflowStatus === 'succeeded'", timeout=10_000)
    page.wait_for_selector(f'[data-nbflow-run="{run}"] .nbflow-status-succeeded',
                           timeout=10_000)
