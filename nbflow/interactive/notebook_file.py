"""Which notebook this kernel runs, and whether the file on disk has the code it ran.

A kernel is not told its notebook for sure. jupyter_server starts kernels with
``JPY_SESSION_NAME`` set to the notebook's absolute path (``SessionManager.get_kernel_env``
joins the kernel's working directory and the notebook's name); VS Code sets
``__vsc_ipynb_file__`` in the namespace. Both can be stale after a rename, so a
candidate counts only if it is an existing ``.ipynb`` file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

NO_NOTEBOOK_HINT = (
    "this kernel cannot tell which notebook it belongs to (JupyterLab sets JPY_SESSION_NAME, "
    "VS Code __vsc_ipynb_file__; neither names an existing .ipynb file): "
    "name it, e.g. %nbflow run my_notebook.ipynb"
)


def current_notebook(user_ns: Mapping[str, object]) -> str | None:
    """The notebook file this kernel was started for, if it can be known."""
    for candidate in (user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb") and \
                os.path.isfile(candidate):
            return candidate
    return None


@dataclass
class RanStep:
    kind: str
    body: str
    at: float = field(default_factory=time.time)


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def unsaved_steps(path: str, ran: Mapping[str, RanStep]) -> list[str]:
    """Steps this kernel ran with code that differs from the file, where the kernel ran
    them after the file was last saved: edits the headless run will not see."""
    import nbformat

    from nbflow.notebook.reader import spec_from_notebook

    try:
        saved_at = os.path.getmtime(path)
        spec = spec_from_notebook(nbformat.read(path, as_version=4), path)
    except Exception:  # an unreadable file is reported by the run itself
        return []
    on_disk: dict[str, tuple[int, str]] = {s.name: (s.cell, s.source) for s in spec.steps}
    stale = []
    for name, step in ran.items():
        if step.at <= saved_at:
            continue
        if name not in on_disk:
            stale.append(f"%%{step.kind} {name} (not in the saved file)")
        elif _normal(on_disk[name][1]) != _normal(step.body):
            stale.append(f"%%{step.kind} {name} (cell {on_disk[name][0]})")
    return stale
