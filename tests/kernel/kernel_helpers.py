"""Notebook builders shared by the kernel tests."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


def notebook(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(
        cells=[new_code_cell(src) for src in sources],
        metadata={"kernelspec": {"name": "python3", "language": "python",
                                 "display_name": "Python 3"}},
    )


def text_of(cell: nbformat.NotebookNode) -> str:
    """All stdout text and plain-text results of one executed cell."""
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(out.data.get("text/plain", ""))
    return "".join(parts).strip()
