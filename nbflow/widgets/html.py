"""Small HTML builders shared by the widgets: tables, badges, logs, an executed notebook.

Pure functions of plain values returning HTML strings, so the widgets stay thin and
their contents are easy to assert on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from nbflow.widgets.dag_svg import COLOURS, SYMBOLS

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# One stylesheet for every nbflow widget (a <style> in an HTML widget applies to the page).
STYLE = """<style>
.nbflow-table { border-collapse: collapse; font-size: 12.5px; margin: 4px 0; }
.nbflow-table th { text-align: left; font-weight: 600; border-bottom: 1px solid #d1d5db;
  padding: 2px 10px 2px 4px; }
.nbflow-table td { padding: 2px 10px 2px 4px; border-bottom: 1px solid #f3f4f6;
  vertical-align: top; }
.nbflow-table tr.nbflow-changed td { background: #fef9c3; }
.nbflow-badge { display: inline-block; border-radius: 9px; padding: 0 7px; font-size: 12px;
  border: 1px solid; white-space: nowrap; }
.nbflow-pre { font-family: var(--jp-code-font-family, monospace); font-size: 12px;
  white-space: pre-wrap; margin: 2px 0; padding: 6px; background: #f9fafb;
  border-radius: 4px; max-height: 360px; overflow: auto; }
.nbflow-pre.nbflow-error { background: #fef2f2; color: #7f1d1d; }
.nbflow-runs select, .nbflow-mono { font-family: var(--jp-code-font-family, monospace);
  font-size: 12.5px; }
.nbflow-muted { color: #6b7280; }
.nbflow-nb-cell { border-left: 3px solid #e5e7eb; margin: 6px 0; padding-left: 8px; }
</style>"""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def badge(state: str) -> str:
    fill, stroke, text = COLOURS.get(state, COLOURS["waiting"])
    symbol = SYMBOLS.get(state, "")
    return (f'<span class="nbflow-badge" data-state="{escape(state)}" style="background:{fill};'
            f'border-color:{stroke};color:{text}">{escape(symbol)} {escape(state)}</span>')


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *,
          changed: Iterable[bool] | None = None, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are HTML already)."""
    flags = list(changed) if changed is not None else None
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = ' class="nbflow-changed"' if flags is not None and flags[i] else ""
        cells = "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table class="nbflow-table"><tr>{head}</tr>{"".join(body)}</table>'


def pre(text: str, *, error: bool = False) -> str:
    cls = "nbflow-pre nbflow-error" if error else "nbflow-pre"
    return f'<pre class="{cls}">{escape(strip_ansi(text))}</pre>'


def local_time(value: dt.datetime | None) -> str:
    """A catalog timestamp (naive UTC) in the viewer's local time."""
    if value is None:
        return ""
    return value.replace(tzinfo=dt.UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def short_value(value: Any, size: int = 40) -> str:
    text = str(value)
    if isinstance(value, float):
        short = f"{value:.4g}"
        text = short if any(c in short for c in ".einf") else f"{short}.0"
    return text if len(text) <= size else text[: size - 1] + "…"


def pairs(values: Mapping[str, Any], size: int = 24) -> str:
    return " ".join(f"{k}={short_value(v, size)}" for k, v in values.items())


def notebook_html(nb: Any) -> str:
    """An executed notebook's code cells with their text, HTML and image outputs."""
    parts = []
    for number, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        outputs = "".join(_output_html(o) for o in cell.get("outputs", []))
        parts.append(f'<div class="nbflow-nb-cell"><div class="nbflow-muted">cell {number}</div>'
                     f"{pre(cell.get('source', ''))}{outputs}</div>")
    return "".join(parts) or '<span class="nbflow-muted">no code cells</span>'


def _output_html(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return pre(_text(output.get("text", "")), error=output.get("name") == "stderr")
    if kind == "error":
        return pre("\n".join(output.get("traceback", [])) or
                   f"{output.get('ename')}: {output.get('evalue')}", error=True)
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{_text(data["image/png"]).strip()}"/>'
    if "text/html" in data:
        return f"<div>{_text(data['text/html'])}</div>"
    if "text/plain" in data:
        return pre(_text(data["text/plain"]))
    return ""


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)
