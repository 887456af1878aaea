"""Draw a run's DAG as an SVG string: one box per step, coloured by state, with durations.

A pure function of plain data (no widgets, no catalog), so it is tested on its own and
used by both the live progress view and the run history. Steps are laid out left to
right in columns by their longest distance from a root; within a column they keep cell
order, so the picture reads like the notebook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# state -> (fill, stroke, text); also the legend, in this order
COLOURS: dict[str, tuple[str, str, str]] = {
    "waiting": ("#f3f4f6", "#9ca3af", "#374151"),
    "running": ("#dbeafe", "#2563eb", "#1e3a8a"),
    "succeeded": ("#dcfce7", "#16a34a", "#14532d"),
    "cached": ("#ccfbf1", "#0d9488", "#134e4a"),
    "failed": ("#fee2e2", "#dc2626", "#7f1d1d"),
    "cancelled": ("#fef3c7", "#d97706", "#78350f"),
    "skipped": ("#f9fafb", "#d1d5db", "#9ca3af"),
}
SYMBOLS = {"waiting": "…", "running": "▶", "succeeded": "✓", "cached": "↺", "failed": "✗",
           "cancelled": "■", "skipped": "–"}

_W, _H = 150, 48  # node box
_GAP_X, _GAP_Y = 56, 18
_PAD = 12
_LEGEND_H = 26


@dataclass(frozen=True)
class Node:
    """One step as drawn: ``done``/``total`` count a branch's tasks (total 0: not known yet)."""

    name: str
    parents: tuple[str, ...] = ()
    state: str = "waiting"
    seconds: float | None = None
    kind: str = "step"
    done: int = 0
    total: int = 0


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def columns(nodes: Sequence[Node]) -> dict[str, int]:
    """Each step's column: 0 for roots, else one more than its deepest parent."""
    known = {n.name for n in nodes}
    column: dict[str, int] = {}
    for node in nodes:  # cell order is a topological order: parents come first
        parents = [p for p in node.parents if p in known]
        column[node.name] = 1 + max((column.get(p, 0) for p in parents), default=-1)
    return column


def dag_svg(nodes: Sequence[Node], *, title: str = "", legend: bool = True) -> str:
    """The DAG as a standalone ``<svg>`` element (inline it in HTML or save it as .svg)."""
    column = columns(nodes)
    rows: dict[int, int] = {}
    position: dict[str, tuple[int, int]] = {}
    for node in nodes:
        c = column[node.name]
        position[node.name] = (_PAD + c * (_W + _GAP_X), _PAD + rows.get(c, 0) * (_H + _GAP_Y))
        rows[c] = rows.get(c, 0) + 1
    width = _PAD * 2 + max(len(rows), 1) * (_W + _GAP_X) - _GAP_X
    height = _PAD * 2 + max(rows.values(), default=1) * (_H + _GAP_Y) - _GAP_Y
    legend_y = height
    if legend:
        height += _LEGEND_H
        width = max(width, 560)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="nbflow-dag" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title or "run DAG")}" font-family="system-ui, sans-serif">',
        f"<title>{escape(title or 'run DAG')}</title>",
        '<defs><marker id="nbflow-arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#6b7280"/></marker>'
        "</defs>",
    ]
    for node in nodes:
        parts += [_edge(position[p], position[node.name]) for p in node.parents if p in position]
    for node in nodes:
        parts.append(_node(node, *position[node.name]))
    if legend:
        parts.append(_legend(legend_y))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(start: tuple[int, int], end: tuple[int, int]) -> str:
    x1, y1 = start[0] + _W, start[1] + _H // 2
    x2, y2 = end[0] - 2, end[1] + _H // 2
    mid = (x1 + x2) / 2
    return (f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" '
            f'stroke="#9ca3af" stroke-width="1.5" marker-end="url(#nbflow-arrow)"/>')


def _node(node: Node, x: int, y: int) -> str:
    fill, stroke, text = COLOURS.get(node.state, COLOURS["waiting"])
    detail = "reused" if node.state == "cached" else format_seconds(node.seconds)
    if node.kind == "branch":
        count = f"{node.done}/{node.total}" if node.total else "foreach"
        detail = f"{count} · {detail}" if detail else count
    tip = f"{node.name} ({node.kind}): {node.state}" + (f", {detail}" if detail else "")
    dash = ' stroke-dasharray="5 3"' if node.state in ("cached", "skipped") else ""
    parts = [f'<g class="nbflow-node" data-step="{escape(node.name)}" '
             f'data-state="{escape(node.state)}"><title>{escape(tip)}</title>']
    if node.kind == "branch":  # a stack of cards: one task per element
        for offset in (6, 3):
            parts.append(f'<rect x="{x + offset}" y="{y - offset}" width="{_W}" height="{_H}" '
                         f'rx="7" fill="{fill}" stroke="{stroke}" stroke-opacity="0.5"/>')
    parts.append(f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="7" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="2"{dash}/>')
    if node.state == "running":
        parts.append(f'<rect x="{x}" y="{y}" width="{_W}" height="{_H}" rx="7" fill="none" '
                     f'stroke="{stroke}" stroke-width="3" opacity="0.6">'
                     '<animate attributeName="opacity" values="0.7;0.1;0.7" dur="1.4s" '
                     'repeatCount="indefinite"/></rect>')
    symbol = SYMBOLS.get(node.state, "")
    parts.append(f'<text x="{x + 10}" y="{y + 20}" font-size="13" font-weight="600" '
                 f'fill="{text}">{escape(symbol)} {escape(_clip(node.name, 17))}</text>')
    parts.append(f'<text x="{x + 10}" y="{y + 38}" font-size="11.5" fill="{text}">'
                 f"{escape(detail or node.state)}</text>")
    if node.kind == "branch" and node.total:
        filled = int((_W - 20) * min(node.done, node.total) / node.total)
        parts.append(f'<rect x="{x + 10}" y="{y + _H - 6}" width="{_W - 20}" height="3" '
                     f'fill="#ffffff" stroke="none"/><rect x="{x + 10}" y="{y + _H - 6}" '
                     f'width="{filled}" height="3" fill="{stroke}"/>')
    parts.append("</g>")
    return "".join(parts)


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def _legend(y: int) -> str:
    parts = []
    x = _PAD
    for state, (fill, stroke, _text) in COLOURS.items():
        parts.append(f'<rect x="{x}" y="{y + 6}" width="12" height="12" rx="3" fill="{fill}" '
                     f'stroke="{stroke}"/><text x="{x + 16}" y="{y + 16}" font-size="11" '
                     f'fill="#4b5563">{state}</text>')
        x += 22 + 7 * len(state)
    return f'<g class="nbflow-legend">{"".join(parts)}</g>'
