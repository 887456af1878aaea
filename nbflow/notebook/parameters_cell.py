"""The cell tagged ``parameters`` (papermill's convention) as :class:`Parameter` objects."""

from __future__ import annotations

import ast

from nbflow.errors import NotebookError
from nbflow.notebook.spec import REQUIRED, Parameter

_LITERALS = "numbers, strings, lists, dicts, tuples, True/False/None"


def parse_parameters(source: str, *, cell: int, notebook: str | None = None) -> list[Parameter]:
    """``x = 0.2`` -> float 0.2; ``n: int = 5`` -> int 5; ``name: str`` -> required str."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(
            f"syntax error on line {exc.lineno} of the parameters cell: {exc.msg}",
            cell=cell,
            notebook=notebook,
            hint="the parameters cell must be plain Python: one `name = literal` per line",
            line=exc.lineno,
        ) from None
    found: dict[str, Parameter] = {}
    for statement in tree.body:
        for param in _statement_parameters(statement, cell, notebook):
            found[param.name] = param  # a later line wins, as when the cell runs
    return list(found.values())


def _statement_parameters(node: ast.stmt, cell: int, notebook: str | None) -> list[Parameter]:
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return []  # a docstring or a bare literal
    if isinstance(node, ast.Pass):
        return []
    if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
        default = _literal(node.value, node, cell, notebook)
        kind = type(default).__name__
        return [
            Parameter(t.id, default, kind, cell) for t in node.targets if isinstance(t, ast.Name)
        ]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        kind = ast.unparse(node.annotation)
        if node.value is None:
            return [Parameter(node.target.id, REQUIRED, kind, cell)]
        default = _literal(node.value, node, cell, notebook)
        return [Parameter(node.target.id, default, kind, cell)]
    raise NotebookError(
        f"line {node.lineno} of the parameters cell is not a parameter: "
        f"{ast.unparse(node).splitlines()[0]!r}",
        cell=cell,
        notebook=notebook,
        hint="write one `name = literal` or `name: type` per line; "
        "move imports and computed values to a setup cell",
        line=node.lineno,
    )


def _literal(value: ast.expr, node: ast.stmt, cell: int, notebook: str | None) -> object:
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise NotebookError(
            f"line {node.lineno} of the parameters cell: the default "
            f"{ast.unparse(value)!r} is not a literal",
            cell=cell,
            notebook=notebook,
            hint=f"parameter defaults must be literals ({_LITERALS}); "
            "compute derived values in a setup cell or a step",
            line=node.lineno,
        ) from None
