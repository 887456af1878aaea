"""The nbflow JupyterLab extension in a real JupyterLab and Debian's Chromium.

One lab serves every test here (its notebooks are copies made for the test); each test
opens its own notebook. What is checked is what a user sees: the DAG panel's nodes and
edges, the badge on each step cell, errors with their cell numbers, runs started from the
toolbar reaching `succeeded`, then `cached`, freshness after an edit, a cancelled slow run,
and badges that stay right while a long notebook scrolls in windowed mode. Screenshots land
in the lab's tmp dir (and in $NBFLOW_SCREENSHOTS when set).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labserver import BUILT, CHROMIUM, REPO, TOKEN, jupyterlab
from nbbuild import big_notebook
from nbtest import EXAMPLES

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); under CI this test "
                "must run", allow_module_level=True)
if not (BUILT / "package.json").exists() and not os.environ.get("CI"):
    pytest.skip("the lab extension is not built (pip install -e . or cd labextension && "
                "jlpm install && jlpm build)", allow_module_level=True)

CLASSIFIER_EDGES = {("load", "knn"), ("load", "svm"), ("load", "sweep"), ("knn", "choose"),
                    ("svm", "choose"), ("sweep", "choose"),
                    ("load", "choose")}
SLOW = ["import time\n%load_ext nbflow", "%%step first\nx = 1",
        "%%step wait\nfor _ in range(600):\n    time.sleep(0.1)\ny = x + 1"]
ARTIFACTS = REPO / "test-artifacts" / "lab"
LONG_STEPS = 150  # cells: 1 setup + 2 per step (a markdown note and the step)
# 200 steps, each reading the one before and one halfway up: dagre takes seconds for it
SKIPPING_CELLS = 402


def _notebook(path: Path, sources: list[str], markdown_every: int = 0) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    for source in sources:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    _kernel_metadata(nb)
    nbformat.write(nb, path)


def _kernel_metadata(nb: Any) -> Any:
    """The metadata the kernel would write when it starts: otherwise JupyterLab itself
    marks a notebook dirty on opening, hiding whether the extension did."""
    from ipykernel.ipkernel import IPythonKernel

    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = dict(IPythonKernel.language_info)
    return nb


def _long_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("%load_ext nbflow"))
    nb.cells.append(nbformat.v4.new_code_cell("%%step s0\nv0 = 0"))
    for i in range(1, LONG_STEPS):
        nb.cells.append(nbformat.v4.new_markdown_cell(f"Step {i} adds one."))
        nb.cells.append(nbformat.v4.new_code_cell(f"%%step s{i}\nv{i} = v{i - 1} + 1"))
    nbformat.write(_kernel_metadata(nb), path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab-panel")
    work = root / "work"
    work.mkdir()
    import nbformat

    classifier = nbformat.read(EXAMPLES / "classifier.ipynb", as_version=4)
    nbformat.write(_kernel_metadata(classifier), work / "classifier.ipynb")
    _notebook(work / "slow.ipynb", SLOW)
    _long_notebook(work / "long.ipynb")
    nbformat.write(_kernel_metadata(big_notebook(SKIPPING_CELLS)), work / "skipping.ipynb")
    with jupyterlab(root, work, windowing="full") as server:
        yield server


READY = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  return !!(panel && panel.context && panel.context.isReady &&
            document.querySelector('[data-nbflow-panel] [data-nbflow-node]'));
}"""


def open_notebook(page: Any, lab: dict[str, Any], name: str) -> None:
    page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={TOKEN}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands"
                           ".hasCommand('nbflow:open-panel')", timeout=60_000)
    page.evaluate("window.jupyterapp.commands.execute('nbflow:open-panel')")
    page.wait_for_function(READY, timeout=60_000)


def nodes(page: Any) -> dict[str, dict[str, str]]:
    return page.evaluate("""() => Object.fromEntries(
      [...document.querySelectorAll('[data-nbflow-panel] [data-nbflow-node]')].map(n =>
        [n.dataset.nbflowNode, {status: n.dataset.nbflowStatus, fresh: n.dataset.nbflowFresh}]))""")


def edges(page: Any) -> set[tuple[str, str]]:
    pairs = page.evaluate("""() => [...document.querySelectorAll(
      '[data-nbflow-panel] [data-nbflow-edge]')].map(e => e.dataset.nbflowEdge)""")
    return {tuple(p.split("->")) for p in pairs}


def badges(page: Any) -> dict[str, dict[str, str]]:
    """Each rendered step cell's badge, keyed by the step its own source names."""
    return page.evaluate("""() => {
      const out = {};
      for (const cell of window.jupyterapp.shell.currentWidget.content.widgets) {
        const first = cell.model.sharedModel.getSource().split('\\n')[0];
        const m = /^%%(step|branch)\\s+(\\S+)/.exec(first);
        if (!(""" + VISIBLE + """)(cell)) continue;
        const badge = cell.node.querySelector('[data-nbflow-badge]');
        if (cell.model.type !== 'code' || !m) {  // a markdown cell or a plain one: no badge
          if (badge) out['!' + cell.model.id] = null;
          continue;
        }
                out[m[2]] = badge ? {name: badge.dataset.nbflowBadge, status: badge.dataset.nbflowStatus,
                             fresh: badge.dataset.nbflowFresh, text: badge.textContent}
                          : null;
      }
      return out;
    }""")


VISIBLE = """(c) => {
  const view = window.jupyterapp.shell.currentWidget.content.node.getBoundingClientRect();
  const box = c.node.getBoundingClientRect();
  return c.node.isConnected && box.height > 0 && box.bottom > view.top && box.top < view.bottom;
}"""
EVERY_RENDERED_STEP_HAS_A_BADGE = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(c => (""" + VISIBLE + """)(c) && c.model.type === 'code' &&
               /^%%(step|branch) /.test(c.model.sharedModel.getSource()))
  .every(c => c.node.querySelector('[data-nbflow-badge]'))"""


def all_badges(page: Any) -> dict[str, dict[str, str]]:
    """Scroll the notebook from top to bottom as a user would (the windowed notebook
    renders only the cells near the viewport, measuring them as they come), wait at each
    stop until every rendered step cell has its badge, and read them."""
    seen: dict[str, dict[str, str]] = {}
    page.evaluate(f"{OUTER}.scrollTop = 0")
    for _ in range(2000):
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.wait_for_function(EVERY_RENDERED_STEP_HAS_A_BADGE, timeout=10_000)
        seen.update(badges(page))
        at_end = page.evaluate(f"""() => {{ const o = {OUTER};
          if (o.scrollTop + o.clientHeight >= o.scrollHeight - 2) return true;
          o.scrollTop += Math.round(o.clientHeight * 0.6); return false; }}""")
        if at_end:
            return seen
    raise AssertionError("scrolling never reached the notebook's end")


OUTER = "window.jupyterapp.shell.currentWidget.content.outerNode"


def set_source(page: Any, index: int, source: str) -> None:
    page.evaluate("([i, s]) => window.jupyterapp.shell.currentWidget.content.widgets[i]"
                  ".model.sharedModel.setSource(s)", [index, source])


def dirty(page: Any) -> bool:
    return bool(page.evaluate("window.jupyterapp.shell.currentWidget.context.model.dirty"))


def wait_nodes(page: Any, expect: str, timeout: int = 60_000) -> None:
    """Wait until every DAG node passes ``expect`` (a JS expression over `n`, the dataset)."""
    page.wait_for_function(f"""() => {{
      const all = [...document.querySelectorAll('[data-nbflow-panel] [data-nbflow-node]')];
      return all.length > 0 && all.every(el => {{ const n = el.dataset; return {expect}; }});
    }}""", timeout=timeout)


def save_screenshot(locator: Any, name: str) -> Path:
    """Into $NBFLOW_SCREENSHOTS (e.g. CI artifacts), else test-artifacts/lab/ in the repo."""
    folder = Path(os.environ.get("NBFLOW_SCREENSHOTS") or ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(folder / name))
    print(f"screenshot: {folder / name}")
    return folder / name


LAYOUT_PROBLEMS = """() => {
  const panel = document.querySelector('[data-nbflow-panel]');
  const box = panel.getBoundingClientRect();
  const out = [];
  if (panel.scrollWidth > panel.clientWidth + 1)
    out.push(`the panel scrolls sideways (${panel.scrollWidth} > ${panel.clientWidth} px)`);
  const shown = r => r.width > 0 && r.height > 0;
  for (const n of panel.querySelectorAll('[data-nbflow-node] .nbflow-node-box')) {
    const r = n.getBoundingClientRect();
    if (r.left < box.left - 1 || r.right > box.right + 1)
      out.push(`node ${n.parentNode.dataset.nbflowNode} is cut at the panel's edge`);
  }
  for (const t of panel.querySelectorAll('[data-nbflow-node] text')) {
    const size = parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a;
    if (size < 9) out.push(`node text "${t.textContent}" is ${size.toFixed(1)} px`);
  }
  for (const t of panel.querySelectorAll('.nbflow-history td, .nbflow-history th')) {
    if (t.scrollWidth > t.clientWidth + 1)
      out.push(`history cell "${t.textContent}" overflows its column`);
  }
  const scroller = panel.querySelector('.nbflow-history-scroll');
  if (scroller && scroller.scrollWidth > scroller.clientWidth + 1)
    out.push('the history table is wider than the panel');
  const buttons = [...panel.querySelectorAll('button')].map(b => [b, b.getBoundingClientRect()])
    .filter(([, r]) => shown(r));
  for (let i = 0; i < buttons.length; i++) {
    const [b, r] = buttons[i];
    if (r.right > box.right + 1) out.push(`button "${b.textContent}" runs past the panel`);
    for (const [c, q] of buttons.slice(i + 1)) {
      if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1)
        out.push(`buttons "${b.textContent}" and "${c.textContent}" overlap`);
    }
  }
  return out;
}"""


def readable(page: Any) -> None:
    """The panel at the sidebar's default width: no node cut or tiny, no overflowing table
    cell, no buttons on top of each other."""
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert not problems, problems


def test_panel_draws_the_dag_and_every_step_cell_has_a_badge(page: Any, lab: dict) -> None:
    open_notebook(page, lab, "classifier.ipynb")
    wait_nodes(page, "true")
    drawn = nodes(page)
    assert set(drawn) == {"load", "knn", "svm", "sweep", "choose"}
    assert edges(page) == CLASSIFIER_EDGES
    assert {n["status"] for n in drawn.values()} == {"not-run"}
    assert page.locator('[data-nbflow-node="sweep"]').get_attribute("data-nbflow-kind") == "branch"
    page.wait_for_selector("[data-nbflow-badge]")
    cells = all_badges(page)
    assert set(cells) == {"load", "knn", "svm", "sweep", "choose"}
    for step, badge in cells.items():
        assert badge is not None, f"no badge on the cell of step {step}"
        assert badge["name"] == step and badge["status"] == "not-run"
    upstream = cells["choose"]["text"].split("←")[1].split("not run")[0]
    assert set(upstream.strip().split(", ")) == {"load", "knn", "svm", "sweep"}
    assert not dirty(page), "opening the notebook and drawing its badges made it dirty"
    # Clicking a node selects its cell.
    page.locator('[data-nbflow-node="svm"] .nbflow-node-box').click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.content.activeCell"
                           ".model.sharedModel.getSource().startsWith('%%step svm')")
    assert not dirty(page)


def test_edits_redraw_the_dag_without_saving(page: Any, lab: dict) -> None:
    open_notebook(page, lab, "classifier.ipynb")
    svm = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
      .findIndex(c => c.model.sharedModel.getSource().startsWith('%%step svm'))""")
    original = page.evaluate(f"window.jupyterapp.shell.currentWidget.content.widgets[{svm}]"
                             ".model.sharedModel.getSource()")
    set_source(page, svm, original + "\nn_classes = len(knn.classes_)")
    page.wait_for_selector('[data-nbflow-edge="knn->svm"]', timeout=5_000)
    assert edges(page) == CLASSIFIER_EDGES | {("knn", "svm")}
    page.evaluate(f"window.jupyterapp.shell.currentWidget.content.scrollToItem({svm}, 'center')")
    page.wait_for_function("() => (document.querySelector('[data-nbflow-badge=\"svm\"]') || "
                           "{textContent: ''}).textContent.includes('← load, knn')", timeout=5_000)
    # A second `%%step knn` (the scratch cell rewritten) is an error with its cell number.
    scratch = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
      .findIndex(c => c.model.sharedModel.getSource().startsWith('print('))""")
    set_source(page, scratch, "%%step knn\nz = 1")
    error = page.locator("[data-nbflow-panel] [data-nbflow-error]").first
    error.wait_for(timeout=5_000)
    assert error.get_attribute("data-nbflow-cell") == str(scratch + 1)
    assert "knn" in error.inner_text()
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-error.png")
    page.locator("[data-nbflow-panel] [data-nbflow-error]").first.click()
    page.wait_for_function(f"() => window.jupyterapp.shell.currentWidget.content"
                           f".activeCellIndex === {scratch}")
    # Undo both edits: the picture comes back; nothing was saved.
    set_source(page, scratch, 'print("scratch")')
    set_source(page, svm, original)
    page.wait_for_selector("[data-nbflow-panel] [data-nbflow-error]", state="detached",
                           timeout=5_000)
    page.wait_for_selector('[data-nbflow-edge="knn->svm"]', state="detached", timeout=5_000)
    saved = json.loads((lab["work"] / "classifier.ipynb").read_text())
    assert [c["source"] for c in saved["cells"]] == \
        [c["source"] for c in json.loads((EXAMPLES / "classifier.ipynb").read_text())["cells"]], \
        "an edit was saved"


def test_run_from_the_toolbar_then_cached_then_an_edit_makes_steps_stale(
        page: Any, lab: dict) -> None:
    open_notebook(page, lab, "classifier.ipynb")
    assert not dirty(page)
    page.locator(".nbflow-toolbar-run").first.click()
    page.wait_for_selector("[data-nbflow-live]", timeout=10_000)
    wait_nodes(page, "n.nbflowStatus === 'succeeded'", timeout=120_000)
    page.wait_for_selector('[data-nbflow-live][data-nbflow-state="succeeded"]', timeout=30_000)
    wait_nodes(page, "n.nbflowFresh === 'true'", timeout=10_000)  # freshness follows the run
    sweep = page.locator("[data-nbflow-panel] [data-nbflow-node=sweep]")
    assert "×3" in sweep.text_content()  # the fan-out's task count, once known
    page.wait_for_selector("[data-nbflow-panel] [data-nbflow-run]", timeout=10_000)
    readable(page)  # a DAG three nodes wide, a history with parameters and metrics
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-succeeded.png")

    page.evaluate("window.jupyterapp.commands.execute('nbflow:run')")
    page.wait_for_function("() => document.querySelectorAll('[data-nbflow-live]').length === 2",
                           timeout=10_000)
    wait_nodes(page, "n.nbflowStatus === 'cached'", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('[data-nbflow-run]').length === 2",
                           timeout=10_000)
    cells = all_badges(page)
    assert {b["status"] for b in cells.values()} == {"cached"}, cells
    assert all("cached from classifier/1" in b["text"] for b in cells.values()), cells
    knn = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
      .findIndex(c => c.model.sharedModel.getSource().startsWith('%%step knn'))""")
    page.evaluate(f"window.jupyterapp.shell.currentWidget.content.scrollToItem({knn}, 'start')")
    save_screenshot(page.locator(".jp-Notebook .jp-Cell").filter(
        has=page.locator('[data-nbflow-badge="knn"]')), "badge-cached.png")

    # Selecting the first run in the history shows its statuses again.
    page.locator('[data-nbflow-run="classifier/1"]').click()
    wait_nodes(page, "n.nbflowStatus === 'succeeded'", timeout=10_000)
    page.locator('[data-nbflow-run="classifier/1"]').click()  # back to the latest
    wait_nodes(page, "n.nbflowStatus === 'cached'", timeout=10_000)

    source = page.evaluate(f"window.jupyterapp.shell.currentWidget.content.widgets[{knn}]"
                           ".model.sharedModel.getSource()")
    set_source(page, knn, source.replace('algorithm="brute"', 'algorithm="brute", p=1'))
    wait_nodes(page, "n.nbflowFresh === (['knn', 'choose'].includes(n.nbflowNode) "
                     "? 'false' : 'true')", timeout=5_000)
    knn_node = page.locator("[data-nbflow-panel] [data-nbflow-node=knn] > title")
    assert "code changed" in knn_node.text_content()
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-stale.png")


def test_a_slow_run_is_cancelled(page: Any, lab: dict) -> None:
    open_notebook(page, lab, "slow.ipynb")
    page.locator('[data-nbflow-panel] [data-nbflow-action="run"]').click()
    page.wait_for_selector('[data-nbflow-node="wait"][data-nbflow-status="running"]',
                           timeout=60_000)
    page.locator('[data-nbflow-panel] [data-nbflow-action="cancel"]').click()
    page.wait_for_selector('[data-nbflow-live][data-nbflow-state="cancelled"]', timeout=60_000)
    page.wait_for_selector('[data-nbflow-run] .nbflow-status-cancelled', timeout=10_000)
    assert page.locator('[data-nbflow-node="first"]').get_attribute(
        "data-nbflow-status") == "succeeded"
    assert page.locator('[data-nbflow-node="wait"]').get_attribute(
        "data-nbflow-status") in {"cancelled", "not-run"}


def test_badges_stay_right_in_a_scrolled_windowed_notebook(page: Any, lab: dict) -> None:
    open_notebook(page, lab, "long.ipynb")
    wait_nodes(page, "true")
    assert len(nodes(page)) == LONG_STEPS
    assert page.evaluate("window.jupyterapp.shell.currentWidget.content.notebookConfig"
                         ".windowingMode") == "full"

    def check(expect_steps: int) -> None:
        cells = all_badges(page)
        assert len(cells) == expect_steps
        for step, badge in cells.items():
            assert badge is not None and badge["name"] == step, (step, badge)
            upstream = f"← s{int(step[1:]) - 1}" if step != "s0" else "← no upstream"
            assert upstream in badge["text"], (step, badge)

    check(LONG_STEPS)
    page.evaluate("window.jupyterapp.shell.currentWidget.content.scrollToItem(0, 'start')")
    check(LONG_STEPS)
    assert not dirty(page), "opening and scrolling the notebook made it dirty"
    # Move a step cell, delete one, turn one into markdown, add one: badges follow.
    page.evaluate("""() => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      const shared = nb.model.sharedModel;
      shared.moveCell(2, 5);            // the note before s1 goes after s2
      shared.deleteCell(nb.widgets.findIndex(c => c.model.sharedModel.getSource().startsWith('%%step s149')));
      nb.activeCellIndex = nb.widgets.findIndex(
        c => c.model.sharedModel.getSource().startsWith('%%step s148'));
      window.jupyterapp.commands.execute('notebook:change-cell-to-markdown');
      shared.insertCell(nb.widgets.length, {cell_type: 'code', source: '%%step extra\\nw = v147'});
    }""")
    page.wait_for_selector('[data-nbflow-node="extra"]', timeout=5_000)
    page.wait_for_selector('[data-nbflow-node="s148"]', state="detached", timeout=5_000)
    cells = all_badges(page)
    assert "s148" not in cells and "s149" not in cells
    assert all(b is not None and b["name"] == s for s, b in cells.items()), \
        {s: b for s, b in cells.items() if b is None or b["name"] != s}
    assert set(cells) == {f"s{i}" for i in range(148)} | {"extra"}
    assert "← s147" in cells["extra"]["text"]
    assert "← s0" in cells["s1"]["text"] and "← s1" in cells["s2"]["text"]
    # s148 back to code (a new cell widget for the same cell): its badge comes back.
    page.evaluate("""() => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      nb.activeCellIndex = nb.widgets.findIndex(
        c => c.model.sharedModel.getSource().startsWith('%%step s148'));
      window.jupyterapp.commands.execute('notebook:change-cell-to-code');
    }""")
    page.wait_for_selector('[data-nbflow-node="s148"]', timeout=5_000)
    cells = all_badges(page)
    assert set(cells) == {f"s{i}" for i in range(149)} | {"extra"}
    assert cells["s148"] is not None and "← s147" in cells["s148"]["text"], cells["s148"]


def placements(page: Any) -> dict[str, str]:
    """Each DAG node's place (its transform), by step."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
      '[data-nbflow-panel] [data-nbflow-node]')].map(n => [n.dataset.nbflowNode,
      n.getAttribute('transform')]))""")


LAYOUT = "document.querySelector('[data-nbflow-panel] svg.nbflow-dag')?.dataset.nbflowLayout"


def test_a_long_notebook_s_picture_follows_an_edit_before_dagre_has_laid_it_out(
        page: Any, lab: dict) -> None:
    """dagre needs seconds for 200 steps with long edges: until it is done, the panel draws
    a draft from the last picture (faint edges, "laying out…") with the new edge and the
    new step in it, then dagre's layout replaces the draft."""
    open_notebook(page, lab, "skipping.ipynb")
    page.wait_for_function(f"() => {LAYOUT} === 'dagre'", timeout=120_000)
    assert len(nodes(page)) == 200
    before = placements(page)
    s150 = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
      .findIndex(c => c.model.sharedModel.getSource().startsWith('%%step s150\\n'))""")
    source = page.evaluate(f"window.jupyterapp.shell.currentWidget.content.widgets[{s150}]"
                           ".model.sharedModel.getSource()")
    set_source(page, s150, source + "\nextra = v3")
    page.evaluate("""() => { window.jupyterapp.shell.currentWidget.content.model.sharedModel
      .insertCell(402, {cell_type: 'code', source: '%%step late\\nw = v199 + v7'}); }""")
    draft = '[data-nbflow-panel] svg[data-nbflow-layout="draft"]'
    page.wait_for_selector(f'{draft} [data-nbflow-edge="s3->s150"]', timeout=30_000)
    page.wait_for_selector(f'{draft} [data-nbflow-node="late"]', timeout=30_000)
    assert {("s199", "late"), ("s7", "late")} <= edges(page)
    assert page.locator(".nbflow-dag-drafting").inner_text() == "laying out…"
    kept = placements(page)
    assert all(kept[name] == place for name, place in before.items()), \
        "the draft moved nodes that were drawn already"
    save_screenshot(page.locator("[data-nbflow-panel]"), "panel-draft.png")
    page.wait_for_function(f"() => {LAYOUT} === 'dagre'", timeout=120_000)
    assert {("s3", "s150"), ("s199", "late"), ("s7", "late")} <= edges(page)
    assert len(nodes(page)) == 201
    assert page.locator(".nbflow-dag-drafting").count() == 0
    saved = json.loads((lab["work"] / "skipping.ipynb").read_text())
    assert len(saved["cells"]) == SKIPPING_CELLS, "an edit was saved"
