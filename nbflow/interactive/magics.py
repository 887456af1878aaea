"""``%%step`` and ``%%branch`` in a live kernel: the notebook stays a notebook.

``%%step`` runs its body in the user's namespace exactly like a plain cell.
``%%branch NAME --foreach ITEMS --as VAR`` runs its body once per element, each in
its own copy of the namespace (as each headless task has its own kernel), and binds
NAME to the list of per-element namespaces a headless join receives. Names bound
inside a branch do not leak into the notebook, just as they do not headless.
"""

from __future__ import annotations

from typing import Any

from nbflow.errors import MagicArgumentError, NotebookError


def register(ipython: Any) -> None:
    ipython.register_magic_function(_step_magic, magic_kind="cell", magic_name="step")
    ipython.register_magic_function(_branch_magic, magic_kind="cell", magic_name="branch")


def _parse(kind: str, line: str) -> Any:
    from IPython.core.error import UsageError

    from nbflow.notebook.magics import parse_magic_args

    try:
        return parse_magic_args(kind, line)
    except MagicArgumentError as exc:
        raise UsageError(str(exc)) from None


def _step_magic(line: str, cell: str) -> None:
    from IPython import get_ipython

    _parse("step", line)
    shell = get_ipython()
    shell.run_cell(cell, store_history=False)


def _branch_magic(line: str, cell: str) -> None:
    from IPython import get_ipython
    from IPython.core.error import UsageError

    from nbflow.kernel.namespace import Namespace
    from nbflow.notebook.names import analyze

    magic = _parse("branch", line)
    shell = get_ipython()
    try:
        items = shell.user_ns[magic.foreach]
    except KeyError:
        raise UsageError(
            f"%%branch {magic.name}: --foreach {magic.foreach} names nothing defined yet; "
            f"run the cell that defines {magic.foreach!r} first"
        ) from None
    try:
        outputs = analyze(cell).outputs
    except NotebookError as exc:
        raise UsageError(f"%%branch {magic.name}: {exc}") from None
    code = compile(shell.transform_cell(cell), f"<branch {magic.name}>", "exec")
    results = []
    for index, item in enumerate(items):
        namespace = dict(shell.user_ns)
        namespace[magic.as_] = item
        exec(code, namespace)
        bound = {n: namespace[n] for n in outputs if n in namespace and not n.startswith("_")}
        bound[magic.as_] = item
        results.append(Namespace(bound, label=f"{magic.name}[{index}]"))
    shell.user_ns[magic.name] = results
