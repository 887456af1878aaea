"""Whether a run's setup cells may run once, in a template its tasks fork from.

A forked task starts with a copy of everything the template's setup made, which is what
replaying the setup in the task would make, unless setup did something a copy does not
reproduce: drew random numbers (each replay seeds its own generator after the fork; a
copy would hand every task the same draws), read its process id, made a temporary
file or directory, or generated a uuid (one for all tasks instead of one each). Those
are found here, from the sources; threads, open files, sockets and child processes are
found at run time by the template itself (``nbflow.kernel._template``).

``NBFLOW_SETUP=replay`` replays the setup cells in every task, as without a template.
"""

from __future__ import annotations

import os
import re

from nbflow.notebook.spec import NotebookSpec

_PER_PROCESS = (
    (re.compile(r"\brandom\s*\.\s*\w+\s*\(|\b(?:seed|default_rng|manual_seed|RandomState|"
                r"randint|randn|rand|shuffle|choice|permutation|uniform|normal|sample)\s*\("),
     "calls a random number generator (each task must draw its own numbers)"),
    (re.compile(r"\bgetpid\s*\("), "reads its process id"),
    (re.compile(r"\b(?:mkdtemp|mkstemp|TemporaryDirectory|NamedTemporaryFile|"
                r"TemporaryFile|SpooledTemporaryFile)\b"),
     "makes temporary files (each task makes its own)"),
    (re.compile(r"\buuid\d\s*\("), "generates a uuid (each task generates its own)"),
)


def template_blocker(spec: NotebookSpec) -> str | None:
    """Why the setup cells must be replayed in every task, or ``None`` when a template may
    run them once (the template still checks itself at run time)."""
    mode = os.environ.get("NBFLOW_SETUP", "template").strip().lower()
    if mode == "replay":
        return "NBFLOW_SETUP=replay"
    for cell in spec.setup:
        if cell.is_parameters:
            continue
        for pattern, what in _PER_PROCESS:
            if pattern.search(cell.source):
                return f"setup cell {cell.cell} {what}"
    return None


def has_setup(spec: NotebookSpec) -> bool:
    """Setup cells other than the parameters: only then is there work to do once."""
    return any(not cell.is_parameters for cell in spec.setup)
