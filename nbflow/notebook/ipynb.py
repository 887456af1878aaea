"""Reading and writing .ipynb files as plain JSON.

nbformat's reader validates against the JSON schema, and importing it pulls in
jsonschema: ~0.1 s that a fully cached run would otherwise spend on every start. Files
in the current format (v4) are plain JSON with ``source`` as a string or a list of lines;
anything older goes through nbformat, which knows how to upgrade it.
"""

from __future__ import annotations

import json
import os
from typing import Any


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The notebook as a v4 dict, each cell's ``source`` (and stream text) joined."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    if not isinstance(nb, dict) or "cells" not in nb and "worksheets" not in nb:
        raise ValueError(f"it holds JSON ({type(nb).__name__}) but not a notebook "
                         "(a notebook is a JSON object with 'cells')")
    if nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        import nbformat

        return dict(nbformat.read(str(path), as_version=4))
    for cell in nb["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cell.setdefault("metadata", {})
    return nb


def reads(text: str) -> dict[str, Any]:
    nb: dict[str, Any] = json.loads(text)
    for cell in nb.get("cells", []):
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
    return nb


def dumps(nb: Any) -> str:
    """As nbformat writes it (one-space indent, sorted keys), without re-validating."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
