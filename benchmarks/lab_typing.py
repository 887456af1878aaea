"""Typing in a 400-cell notebook in a real JupyterLab, with and without nbflow's panel.

Issue 8: "the panel must not make typing in a 400-cell notebook lag". This starts two
real JupyterLabs (``tests/lab/labserver.py``): one with nbflow's extensions, one with the
nbflow lab extension disabled by page config (the true baseline: JupyterLab alone). Each
opens the same generated notebook (``tests/nbbuild.py``'s ``big_notebook``: 400 cells,
setup + parameters, then %%step and markdown cells alternating; with nbflow, run once
headless first, so every badge shows a fresh succeeded step and an edit near the top turns
about 200 of them stale) in Debian's Chromium, and
Playwright's keyboard types ``--chars`` characters into one step cell near the top and one
deep in the notebook, in words with pauses as a person types (so the debounced analysis
really runs, comes back and redraws while the typing goes on). Three conditions, measured
interleaved in the same run, round after round, in rotating order:

* ``disabled``: the nbflow lab extension not loaded (baseline);
* ``closed``: nbflow loaded (badges on every step cell, analysis while typing), the side
  panel not shown;
* ``open``: nbflow loaded and the DAG panel visible and updating.

Each keystroke's latency is measured in the page: from the keydown event's timestamp to
just after the next frame was painted (a ``requestAnimationFrame`` callback, then a
message posted from it). Long tasks (> 50 ms, ``longtask`` entries) during the typing are
counted, and long animation frames (``long-animation-frame``) are attributed to nbflow
when a script of nbflow's bundle ran in them for more than 10 ms. The analyse requests
the page sent during each typing are counted (the debounce check: a handful per burst of
typing, never one per keystroke).

Criterion (PASS/FAIL printed at the end): with the panel open, the p95 keystroke latency
is within 1.25x the disabled baseline's, and no long frame during typing has nbflow's
code in it for more than 10 ms; analyse requests are fewer than one per 5 keystrokes.
The long-frame part matters: a freeze of several seconds delays only the few keys typed
during it, so p95 alone can miss it (the max column and the long frames show it).

    python benchmarks/lab_typing.py [--rounds 3] [--chars 200] [--windowing contentVisibility]

Needs Chromium at /usr/bin/chromium and the built extension (cd labextension && jlpm build).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from labserver import ARGS, BUILT, CHROMIUM, TOKEN, jupyterlab  # noqa: E402
from nbbuild import big_notebook  # noqa: E402

N_CELLS = 400
CONDITIONS = ["disabled", "closed", "open"]
RATIO_LIMIT = 1.25
NBFLOW_SCRIPT_MS = 10  # a long frame with more of nbflow's code than this is the panel's
ANALYSE_PATH = "/nbflow/api/analyze"

INSTRUMENT = """() => {
  if (window.__lb) return;
  const lb = window.__lb = {lat: [], long: [], loaf: [], events: [], on: false};
  addEventListener('keydown', e => {
    if (!lb.on) return;
    const t0 = e.timeStamp;
    requestAnimationFrame(() => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => lb.lat.push(performance.now() - t0);
      ch.port2.postMessage(0);
    });
  }, {capture: true});
  new PerformanceObserver(list => { if (lb.on) for (const e of list.getEntries())
    lb.long.push({start: e.startTime, duration: e.duration}); }).observe({type: 'longtask'});
  new PerformanceObserver(list => { if (lb.on) for (const e of list.getEntries())
    lb.loaf.push({start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
      scripts: e.scripts.map(s => ({url: s.sourceURL, fn: s.sourceFunctionName,
        invoker: s.invoker, duration: s.duration}))}); })
    .observe({type: 'long-animation-frame'});
  new PerformanceObserver(list => { if (lb.on) for (const e of list.getEntries())
    if (e.name === 'keydown') lb.events.push(e.duration); })
    .observe({type: 'event', durationThreshold: 16});
}"""

START = "() => { const lb = window.__lb; lb.lat = []; lb.long = []; lb.loaf = []; lb.events = []; lb.on = true; }"
# Wait two frames so the last keystroke's measurement lands, then stop and read.
STOP = """() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() =>
  setTimeout(() => { const lb = window.__lb; lb.on = false;
    r({lat: lb.lat, long: lb.long, loaf: lb.loaf, events: lb.events}); }, 50))))"""

NOTEBOOK = "window.jupyterapp.shell.currentWidget.content"
FOCUS = """async ([i]) => {
  const nb = """ + NOTEBOOK + """;
  nb.mode = 'command';
  nb.activeCellIndex = i;
  nb.deselectAll();
  await nb.scrollToItem(i, 'center');
  await nb.activeCell.ready;
  await new Promise(r => setTimeout(r, 300));
  nb.mode = 'edit';
  const editor = nb.activeCell.editor;
  editor.focus();
  const last = editor.lineCount - 1;
  editor.setCursorPosition({line: last, column: editor.getLine(last).length});
}"""
SOURCE = f"([i]) => {NOTEBOOK}.widgets[i].model.sharedModel.getSource()"
SET_SOURCE = f"([i, s]) => {NOTEBOOK}.widgets[i].model.sharedModel.setSource(s)"
BADGES = "() => document.querySelectorAll('[data-nbflow-badge]').length"
PANEL_NODES = "() => document.querySelectorAll('[data-nbflow-panel] [data-nbflow-node]').length"
PANEL_SHOWN = """() => { const p = document.getElementById('nbflow-panel');
  return !!p && p.offsetParent !== null && !p.classList.contains('lm-mod-hidden'); }"""


def words_for(step: int, chars: int) -> list[str]:
    """About ``chars`` characters of code, as words: a new statement that reads an
    earlier step's output (so the analysis finds a new edge while it is typed), then a
    comment. No brackets or quotes, which the editor would close by itself."""
    upstream = max(step // 3, 0)
    text = (f"extra = v{upstream} * scale + n - {step} "
            "# typed while nbflow analyses the notebook and redraws what changed "
            "so the badges and the graph follow every pause of the typing hand ")
    while len(text) < chars:
        text += "and more words to type "
    text = text[:chars]
    out: list[str] = []
    for word in text.split(" "):
        out.append(word + " ")
    out[-1] = out[-1][:-1]
    return [w for w in out if w]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Page:
    """One browser page on one lab, with the notebook open and the probes installed."""

    def __init__(self, browser: Any, lab: dict[str, Any], name: str, nbflow: bool) -> None:
        self.name = name
        self.nbflow = nbflow
        context = browser.new_context(viewport={"width": 1500, "height": 1000})
        self.page = context.new_page()
        self.analyses: list[float] = []
        self.pending = 0
        self.page.on("request", self._request)
        self.page.on("requestfinished", self._finished)
        self.page.on("requestfailed", self._finished)
        self.page.goto(f"{lab['url']}/lab/tree/{name}?reset&token={TOKEN}")
        self.page.wait_for_function(
            "() => { const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " return !!(p && p.context && p.context.isReady && p.content.widgets.length >= "
            f"{N_CELLS}); }}", timeout=120_000)
        has = self.page.evaluate("window.jupyterapp.commands.hasCommand('nbflow:open-panel')")
        assert has == nbflow, f"nbflow lab extension loaded={has}, expected {nbflow}"
        if nbflow:  # badges come with the first analysis
            self.page.wait_for_function(f"() => ({BADGES})() > 0", timeout=120_000)
        self.page.wait_for_function(
            "() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session"
            "?.kernel; return !k || k.status === 'idle'; }", timeout=120_000)
        self.page.evaluate(INSTRUMENT)

    def _request(self, request: Any) -> None:
        if ANALYSE_PATH in request.url:
            self.analyses.append(time.monotonic())
            self.pending += 1

    def _finished(self, request: Any) -> None:
        if ANALYSE_PATH in request.url:
            self.pending -= 1

    def show_panel(self, shown: bool) -> None:
        if shown:
            self.page.evaluate("window.jupyterapp.commands.execute('nbflow:open-panel')")
            self.page.wait_for_function(f"() => ({PANEL_SHOWN})() && ({PANEL_NODES})() > 0",
                                        timeout=60_000)
        else:
            self.page.evaluate("window.jupyterapp.shell.collapseRight()")
            self.page.wait_for_function(f"() => !({PANEL_SHOWN})()", timeout=60_000)

    def settle(self) -> None:
        """Let the analysis an edit scheduled go out and come back, and the page idle."""
        self.page.wait_for_timeout(600)
        deadline = time.monotonic() + 30
        while self.pending > 0 and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        self.page.wait_for_timeout(400)

    def type_into(self, index: int, words: list[str], pauses: list[float],
                  delay: int, profile: Path | None = None) -> dict[str, Any]:
        """Type the words at the end of cell ``index``, then put its text back."""
        original = self.page.evaluate(SOURCE, [index])
        self.page.evaluate(FOCUS, [index])
        self.settle()
        sent = len(self.analyses)
        cdp = None
        if profile:
            cdp = self.page.context.new_cdp_session(self.page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            cdp.send("Profiler.start")
        self.page.evaluate(START)
        t0 = time.monotonic()
        self.page.keyboard.press("Enter")
        for word, pause in zip(words, pauses, strict=True):
            self.page.keyboard.type(word, delay=delay)
            if pause:
                self.page.wait_for_timeout(pause)
        typed = time.monotonic() - t0
        probe = self.page.evaluate(STOP)
        if cdp and profile:
            self.page.wait_for_timeout(1000)  # the last analysis's reply
            taken = cdp.send("Profiler.stop")["profile"]
            profile.write_text(json.dumps(taken))
            print_profile(taken, profile)
            cdp.detach()
        analyses = len(self.analyses) - sent
        after = self.page.evaluate(SOURCE, [index])
        assert after.startswith(original) and after.endswith(words[-1]), (
            f"cell {index} did not receive the keystrokes: {after[-80:]!r}")
        self.page.evaluate(SET_SOURCE, [index, original])
        self.page.evaluate(f"{NOTEBOOK}.mode = 'command'")
        self.settle()
        probe.update(analyses=analyses, seconds=typed)
        return probe


def print_profile(profile: dict[str, Any], path: Path) -> None:
    """The functions that took the most time in a CPU profile (self time, and the total
    time under each of nbflow's functions)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent: dict[int, int] = {}
    for n in profile["nodes"]:
        for child in n.get("children", []):
            parent[child] = n["id"]
    deltas = profile["timeDeltas"]
    took: dict[int, float] = {}
    for sample, delta in zip(profile["samples"][1:], deltas[1:], strict=True):
        took[sample] = took.get(sample, 0.0) + delta / 1000
    own: dict[str, float] = {}
    under: dict[str, float] = {}
    for node_id, ms in took.items():
        frame = nodes[node_id]["callFrame"]
        key = f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}"
        own[key] = own.get(key, 0.0) + ms
        seen = set()
        walk: int | None = node_id
        while walk is not None:
            f = nodes[walk]["callFrame"]
            name = f"{f['functionName'] or '(anonymous)'} {f['url'].rsplit('/', 1)[-1]}"
            if "/nbflow/" in f["url"] and name not in seen:
                seen.add(name)
                under[name] = under.get(name, 0.0) + ms
            walk = parent.get(walk)
    print(f"  CPU profile of that trial: {path}")
    for title, table in (("self time", own), ("total under nbflow's functions", under)):
        print(f"    {title}:")
        for key, ms in sorted(table.items(), key=lambda kv: -kv[1])[:12]:
            print(f"      {ms:8.1f} ms  {key}")


def nbflow_ms(frame: dict[str, Any]) -> float:
    return sum(s["duration"] for s in frame["scripts"] if "/nbflow/" in (s["url"] or ""))


@contextmanager
def labs(windowing: str, run: bool) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    import nbformat

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="nbflow-labbench-")))
        servers = []
        for name in ("with", "without"):
            root = tmp / name
            work = root / "work"
            work.mkdir(parents=True)
            nb = big_notebook(N_CELLS)
            assert len(nb.cells) == N_CELLS
            nbformat.write(nb, work / "long.ipynb")
            if name == "with" and run:  # every badge "succeeded" and fresh until an edit
                subprocess.run([sys.executable, "-m", "nbflow", "execute", "long.ipynb",
                                "--home", str(work / ".nbflow"), "-q"],
                               cwd=work, check=True, capture_output=True)
            if name == "without":  # what `jupyter labextension disable nbflow` writes
                labconfig = root / "config" / "labconfig"
                labconfig.mkdir(parents=True)
                (labconfig / "page_config.json").write_text(
                    json.dumps({"disabledExtensions": {"nbflow": True}}))
            servers.append(stack.enter_context(jupyterlab(root, work, windowing=windowing)))
        yield servers[0], servers[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chars", type=int, default=200, help="characters typed per trial")
    parser.add_argument("--delay", type=int, default=60, help="ms between keys in a word")
    parser.add_argument("--windowing", default="contentVisibility",
                        help="the notebook's windowingMode (JupyterLab's default: "
                             "contentVisibility; also full, defer, none)")
    parser.add_argument("--no-run", action="store_true",
                        help="do not run the notebook first (by default it runs once, so "
                             "every step is fresh and an edit near the top turns ~200 "
                             "badges stale)")
    parser.add_argument("--profile", type=Path,
                        help="write a CPU profile of the first panel-open trial here and "
                             "print its top functions")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM) or not (BUILT / "package.json").exists():
        print(f"needs {CHROMIUM} and the built extension (cd labextension && jlpm build)",
              file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright

    top_cell, deep_cell = 2, N_CELLS - 20  # s0, and s189 (every even cell from 2 is a step)
    cells = {"top": top_cell, "deep": deep_cell}
    rng = random.Random(8)
    plans = {}
    for where, index in cells.items():
        words = words_for((index - 2) // 2, args.chars)
        # A pause after every two to four words, 300-900 ms: the analysis (350 ms after
        # the last key) goes out in most pauses and lands while the typing goes on.
        pauses, left = [], rng.randint(2, 4)
        for _ in words:
            left -= 1
            if left == 0:
                pauses.append(float(rng.randint(300, 900)))
                left = rng.randint(2, 4)
            else:
                pauses.append(0.0)
        plans[where] = (index, words, pauses)
    keys = {where: 1 + sum(len(w) for w in plan[1]) for where, plan in plans.items()}

    started = time.monotonic()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        c: {w: [] for w in cells} for c in CONDITIONS}
    with labs(args.windowing, not args.no_run) as (lab, baseline), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pages = {"nbflow": Page(browser, lab, "long.ipynb", True),
                     "disabled": Page(browser, baseline, "long.ipynb", False)}
            print(f"{N_CELLS} cells, {sum(1 for c in range(2, N_CELLS, 2))} steps, "
                  f"windowing {args.windowing}; typing {keys['top']} keys into cell "
                  f"{top_cell} (top) and {keys['deep']} into cell {deep_cell} (deep), "
                  f"{args.rounds} rounds; load {os.getloadavg()[0]:.2f}", flush=True)
            pages["nbflow"].show_panel(True)  # the panel draws once before anything is timed
            workers = [w.url.rsplit("/", 1)[-1] for w in pages["nbflow"].page.workers]
            print(f"page workers with nbflow: {workers or 'none'}", flush=True)

            def trial(condition: str, where: str, short: bool = False,
                      profile: Path | None = None) -> dict[str, Any]:
                page = pages["disabled" if condition == "disabled" else "nbflow"]
                if condition != "disabled":
                    page.show_panel(condition == "open")
                index, words, pauses = plans[where]
                if short:
                    words, pauses = words[:6], pauses[:6]
                return page.type_into(index, words, pauses, args.delay, profile)

            for condition in CONDITIONS:  # warm-up, not counted
                for where in cells:
                    trial(condition, where, short=True)
            for r in range(args.rounds):
                order = CONDITIONS[r % 3:] + CONDITIONS[:r % 3]
                for where in (cells if r % 2 == 0 else reversed(list(cells))):
                    for condition in order:
                        profile = None
                        if args.profile and condition == "open" and r == 0:
                            profile = args.profile.with_suffix(f".{where}.cpuprofile")
                        got = trial(condition, where, profile=profile)
                        results[condition][where].append(got)
                        lat = got["lat"]
                        print(f"  round {r + 1} {where:>4} {condition:>8}: "
                              f"median {statistics.median(lat):5.1f} ms, "
                              f"p95 {percentile(lat, 0.95):5.1f} ms, "
                              f"long tasks {len(got['long'])}, "
                              f"analyses {got['analyses']}, keys seen {len(lat)}",
                              flush=True)
        finally:
            browser.close()
    return report(results, keys, args, time.monotonic() - started)


def report(results: dict[str, dict[str, list[dict[str, Any]]]], keys: dict[str, int],
           args: argparse.Namespace, seconds: float) -> int:
    print(f"\nper-keystroke latency, keydown to after the next paint "
          f"({args.rounds} rounds, load {os.getloadavg()[0]:.2f}, {seconds:.0f} s):")
    print(f"{'':>9} {'where':>5} {'median':>8} {'p95':>8} {'max':>8} {'long':>5} "
          f"{'nbflow':>7} {'slow ev':>8} {'analyses/trial':>15}")
    p95: dict[str, float] = {}
    median: dict[str, float] = {}
    blamed: dict[str, list[dict[str, Any]]] = {}
    per_key: dict[str, float] = {}
    for condition in CONDITIONS:
        everything: list[float] = []
        for where in list(keys) + ["all"]:
            trials = ([t for w in keys for t in results[condition][w]] if where == "all"
                      else results[condition][where])
            lat = [x for t in trials for x in t["lat"]]
            long = sum(len(t["long"]) for t in trials)
            frames = [f for t in trials for f in t["loaf"] if nbflow_ms(f) > NBFLOW_SCRIPT_MS]
            slow = sum(1 for t in trials for d in t["events"] if d > 50)
            analyses = [t["analyses"] for t in trials]
            if where == "all":
                everything = lat
                blamed[condition] = frames
                pressed = sum(keys[w] * len(results[condition][w]) for w in keys)
                per_key[condition] = sum(analyses) / max(pressed, 1)
            print(f"{condition:>9} {where:>5} {statistics.median(lat):6.1f} ms "
                  f"{percentile(lat, 0.95):6.1f} ms {max(lat):6.1f} ms {long:>5} "
                  f"{len(frames):>7} {slow:>8} {'/'.join(map(str, analyses)):>15}")
        median[condition] = statistics.median(everything)
        p95[condition] = percentile(everything, 0.95)
    print("  long: long tasks (> 50 ms) while typing; nbflow: long frames with > "
          f"{NBFLOW_SCRIPT_MS} ms of nbflow's code; slow ev: keydowns > 50 ms (Event Timing)")
    for condition in ("closed", "open"):
        print(f"{condition} / disabled: median {median[condition] / median['disabled']:.2f}x, "
              f"p95 {p95[condition] / p95['disabled']:.2f}x")
    for condition in ("closed", "open"):
        top = max(x for w in keys for t in results[condition][w] for x in t["lat"])
        base = max(x for w in keys for t in results["disabled"][w] for x in t["lat"])
        print(f"{condition} / disabled: max {top / base:.2f}x")
    print(f"open / closed: median {median['open'] / median['closed']:.2f}x, "
          f"p95 {p95['open'] / p95['closed']:.2f}x")
    for frame in sorted(blamed["open"], key=nbflow_ms, reverse=True)[:5]:
        top = sorted(frame["scripts"], key=lambda s: -s["duration"])[:3]
        print(f"  nbflow long frame {frame['duration']:.0f} ms: " + "; ".join(
            f"{s['invoker']} {s['fn'] or '?'} {s['duration']:.0f} ms" for s in top))
    if args.json:
        args.json.write_text(json.dumps(results))
    ratio = p95["open"] / p95["disabled"]
    ok = (ratio <= RATIO_LIMIT and not blamed["open"] and per_key["open"] < 0.2)
    print(f"{'PASS' if ok else 'FAIL'}: panel open p95 {p95['open']:.1f} ms vs disabled "
          f"{p95['disabled']:.1f} ms = {ratio:.2f}x (limit {RATIO_LIMIT}x); "
          f"{len(blamed['open'])} long frames with nbflow's code; "
          f"{per_key['open']:.3f} analyses per keystroke (limit 0.2)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
