"""Run a ``%%step`` body in a live kernel the way IPython runs a plain cell.

The body goes through IPython's input and AST transformers, runs in the given
namespace, and its last expression is shown through the display hook (``Out``).
Unlike a nested ``shell.run_cell``, an exception is not swallowed: it propagates out of
the magic, so the cell fails, papermill/nbclient stop there, and the traceback (shown
once) points at the cell's own line numbers.
"""

from __future__ import annotations

import ast
from typing import Any


def run_body(shell: Any, body: str, namespace: dict[str, Any] | None = None) -> None:
    """Execute ``body`` (the cell without its magic line) in ``namespace`` (default: the
    user's namespace)."""
    __tracebackhide__ = True
    code, last = compile_body(shell, body)
    scope = shell.user_ns if namespace is None else namespace
    global_scope = shell.user_global_ns if namespace is None else namespace
    exec(code, global_scope, scope)
    if last is not None:
        exec(last, global_scope, scope)


def compile_body(shell: Any, body: str) -> tuple[Any, Any]:
    """(code for every statement but a trailing expression, code that displays it or None)."""
    blank = len(body) - len(body.lstrip("\n"))
    source = shell.transform_cell(body)
    # Line 1 of the cell is the magic line: pad so that tracebacks use the cell's numbers.
    source = "\n" * (1 + blank) + source
    filename = shell.compile.cache(source, shell.execution_count, raw_code=body)
    tree = shell.transform_ast(ast.parse(source, filename=filename))
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Interactive(body=[tree.body.pop()])
    flags = shell.compile.flags
    code = compile(tree, filename, "exec", flags=flags, dont_inherit=True)
    shown = None if last is None else compile(last, filename, "single", flags=flags,
                                              dont_inherit=True)
    return code, shown
