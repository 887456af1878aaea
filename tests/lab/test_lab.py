"""A real JupyterLab and Debian's Chromium: `%nbflow run` and `%nbflow history` render as
widgets. The example ``parameters.ipynb`` gets two scratch cells at its end, is opened in
Lab and run top to bottom; the progress view must show the finished run, the history
must list it and open its DAG when selected. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import ARGS, CHROMIUM, TOKEN, jupyterlab
from nbtest import EXAMPLES

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); under CI this test "
                "must run", allow_module_level=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    import nbformat

    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.read(EXAMPLES / "parameters.ipynb", as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("%nbflow run --tag lab"),
                 nbformat.v4.new_code_cell("%nbflow history")]
    nbformat.write(nb, work / "parameters.ipynb")
    # Lab 4 renders only the cells near the viewport; a widget in a cell further down
    # would not be in the page at all. Render every cell, as a person scrolling would see.
    with jupyterlab(tmp_path, work, windowing="none") as server:
        yield server


KERNEL_IDLE = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session &&
                 panel.sessionContext.session.kernel;
  return !!(kernel && kernel.status === 'idle' && panel.context.isReady);
}"""
RUN_DONE = """() => {
  const view = document.querySelector('.nbflow-run-progress');
  if (!view) return false;
  const header = view.querySelector('.nbflow-badge');
  return !!header && header.dataset.state !== 'running' && header.dataset.state !== 'starting';
}"""


def test_nbflow_run_and_history_render_as_widgets_in_jupyterlab(lab: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        try:
            page.goto(f"{lab['url']}/lab/tree/parameters.ipynb?token={TOKEN}")
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_selector(".nbflow-run-progress", timeout=30_000)
            page.wait_for_function(RUN_DONE, timeout=60_000)
            progress = page.locator(".nbflow-run-progress")
            header = progress.locator(".nbflow-badge").first
            assert header.get_attribute("data-state") == "succeeded", progress.inner_text()
            # Running the cells top to bottom ran every step live, recorded as the
            # interactive run parameters/1; the headless run reuses all of it.
            assert "parameters/2" in progress.inner_text()
            nodes = progress.locator("svg.nbflow-dag g.nbflow-node")
            assert nodes.count() == 3
            assert {nodes.nth(i).get_attribute("data-state") for i in range(3)} == {"cached"}
            progress.screenshot(path=str(lab["out"] / "lab-progress.png"))

            history = page.locator(".nbflow-run-history")
            history.wait_for(timeout=30_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('.nbflow-runs select option')]"
                ".some(o => o.textContent.includes('parameters/2') && "
                "o.textContent.includes('succeeded'))", timeout=30_000)
            assert history.locator(".nbflow-runs select option", has_text="parameters/1").count()
            option = history.locator(".nbflow-runs select option", has_text="parameters/2").first
            assert "#lab" in option.inner_text()
            history.locator(".nbflow-runs select").select_option(label=option.inner_text())
            page.wait_for_selector(".nbflow-run-view svg.nbflow-dag", timeout=30_000)
            assert "learning_rate=0.1" in history.locator(".nbflow-run-view").inner_text()
            outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
            assert not any("RunProgress(" in t or "RunHistory(" in t for t in outputs), \
                "a widget fell back to its text repr"
            history.screenshot(path=str(lab["out"] / "lab-history.png"))
            page.screenshot(path=str(lab["out"] / "lab.png"))
        except Exception:
            page.screenshot(path=str(lab["out"] / "lab-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    saved = os.environ.get("NBFLOW_SCREENSHOTS")
    if saved:  # e.g. CI artifacts
        for name in ("lab.png", "lab-progress.png", "lab-history.png"):
            shutil.copy(lab["out"] / name, Path(saved) / name)
    print(f"screenshots: {lab['out']}")
