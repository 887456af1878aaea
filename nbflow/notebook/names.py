"""Which names a cell reads (inputs), binds (outputs) and likely mutates in place.

The cell's top level is walked in execution order, so ``x = x + 1`` reads
``x`` and ``y = 1; print(y)`` does not. Nested scopes are delegated to
:mod:`nbflow.notebook._scopes`; names read inside function bodies resolve when
the function is called, which is taken to be after the cell's own top-level
bindings.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nbflow.errors import NotebookError
from nbflow.notebook import _scopes
from nbflow.notebook._scopes import MUTATING_METHODS, mutated_roots, scan

__all__ = ["MUTATING_METHODS", "NameInfo", "analyze", "imported_names", "parse_cell",
           "parsed", "to_python"]

KERNEL_NAMES = frozenset({"get_ipython", "display", "In", "Out", "exit", "quit"})
NOT_INPUTS = frozenset(dir(builtins)) | KERNEL_NAMES
_TIME_LINE = re.compile(r"^(\s*)%time\s+(?=\S)", re.MULTILINE)
_TIME_CELL = re.compile(r"\A\s*%%time[ \t]*$", re.MULTILINE)
# A line magic or shell escape on a line of its own binds no name (`%load_ext nbflow`,
# `!pip install x`); blanking it lets plain `ast` read the cell without IPython.
_BARE_MAGIC = re.compile(r"^[ \t]*[%!](?!%)[^\n=]*$", re.MULTILINE)


@dataclass(frozen=True)
class NameInfo:
    outputs: frozenset[str]
    inputs: frozenset[str]
    mutated: frozenset[str] = frozenset()  # inputs likely changed in place (also outputs)


@lru_cache(maxsize=1)
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def magic_lines(source: str) -> list[str]:
    """The stand-alone ``%magic`` / ``!shell`` lines ``to_python`` may blank out."""
    return [line.strip() for line in _BARE_MAGIC.findall(source)]


def to_python(source: str) -> str:
    """Turn IPython syntax (``%magic``, ``!cmd``, ``x?``) into Python with the same lines."""
    return _translated(source)[0]


def parsed(source: str) -> ast.Module | None:
    """The cell's tree (IPython syntax allowed), or None if it does not parse. Parsed once
    per text and shared by every reader of the cell: callers must not change it."""
    tree = _translated(source)[1]
    return tree if isinstance(tree, ast.Module) else None


# A pure function of the text, shared by every analysis of a cell (names, file and run
# reads, cache keys): each cell is parsed once per process, and the lab, which
# re-analyses on every edit, parses only the cells that changed.
@lru_cache(maxsize=8192)
def _translated(source: str) -> tuple[str, ast.Module | SyntaxError]:
    """``(python, tree)``: the cell as Python and its tree, or the SyntaxError."""
    # `%time stmt` / `%%time` run their code in the user namespace: keep it visible.
    source = _TIME_CELL.sub("", _TIME_LINE.sub(r"\1", source), count=1)
    # Importing IPython costs ~0.3 s: skip it for cells that are (nearly) plain Python.
    for candidate in (source, _BARE_MAGIC.sub("", source)):
        try:
            return candidate, ast.parse(candidate)
        except SyntaxError:
            continue
    blank = len(source) - len(source.lstrip("\n"))
    try:
        python: str = "\n" * blank + _transformer().transform_cell(source)
    except Exception:  # a tokenizer error: let ast.parse report it with a line number
        python = source
    try:
        return python, ast.parse(python)
    except SyntaxError as exc:
        return python, exc.with_traceback(None)


def parse_cell(
    source: str,
    *,
    cell: int | None = None,
    step: str | None = None,
    notebook: str | None = None,
    line_offset: int = 0,
) -> ast.Module:
    """Parse a cell body (IPython syntax allowed); a SyntaxError names cell, step and line.
    The tree is shared (see :func:`parsed`): do not change it."""
    tree = _translated(source)[1]
    if isinstance(tree, ast.Module):
        return tree
    line = (tree.lineno or 1) + line_offset
    raise NotebookError(
        f"syntax error on line {line} of the cell: {tree.msg}",
        cell=cell,
        step=step,
        notebook=notebook,
        hint="fix the line; nbflow cannot work out what the cell reads and binds until it parses",
        line=line,
    )


@lru_cache(maxsize=4096)
def imported_names(source: str) -> frozenset[str]:
    """Names bound by import statements outside functions (modules, as a rule)."""
    tree = parsed(source)
    if tree is None:
        return frozenset()
    found: set[str] = set()
    # Only statements hold imports: walk the statement lists (if/for/while/try/with/match
    # bodies), not the expressions, and not into function or class bodies.
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(_scopes.bound_names(node))
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for name in _STATEMENT_LISTS:
                stack.extend(getattr(node, name, ()))
    return frozenset(found)


# The fields of a statement (or handler, or match case) that hold statements.
_STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def analyze(
    source: str,
    *,
    modules: Collection[str] = (),
    environment: Collection[str] = (),
    cell: int | None = None,
    step: str | None = None,
    notebook: str | None = None,
    line_offset: int = 0,
) -> NameInfo:
    """Outputs, inputs and mutated names of one cell body.

    ``modules``: names known to hold modules (``np``, ``plt``); calling or setting
    something on them is never a mutation. ``environment``: names every task gets
    anyway (setup, parameters); for them only an explicit mutation counts (a
    known mutator, ``x[k] = v``), not a bare call like ``logger.info(...)``.
    """
    return _analyze(source, frozenset(modules), frozenset(environment), cell, step, notebook,
                    line_offset)


# The lab re-analyses the whole notebook on every edit (debounced): an unchanged cell
# costs a lookup. Errors are raised, never cached; NameInfo is immutable.
@lru_cache(maxsize=4096)
def _analyze(source: str, modules: frozenset[str], environment: frozenset[str],
             cell: int | None, step: str | None, notebook: str | None,
             line_offset: int) -> NameInfo:
    tree = parse_cell(source, cell=cell, step=step, notebook=notebook, line_offset=line_offset)
    walker = _TopLevel(frozenset(modules), frozenset(environment))
    # The cell's last expression is displayed, so its value is not discarded.
    walker.displayed = tree.body[-1] if tree.body else None
    walker.visit_all(tree.body)
    return walker.result()


class _TopLevel(ast.NodeVisitor):
    """Walks module-level code in execution order, tracking what is bound so far."""

    def __init__(self, modules: frozenset[str], environment: frozenset[str]) -> None:
        self.modules = modules
        self.environment = environment
        self.bound: set[str] = set()
        self.statement_bound: set[str] = set()  # bound by top-level code, in any order
        self.inputs: set[str] = set()
        self.outputs: set[str] = set()
        self.mutated: set[str] = set()
        self.deferred: set[str] = set()
        self.deferred_mut: set[str] = set()
        self.displayed: ast.stmt | None = None

    def result(self) -> NameInfo:
        self.inputs |= self.deferred - self.statement_bound
        for name in self.deferred_mut - self.statement_bound:
            self._mutated(name)
        odd = self.mutated & NOT_INPUTS
        return NameInfo(
            outputs=frozenset(self.outputs - odd),
            inputs=frozenset(self.inputs - NOT_INPUTS),
            mutated=frozenset(self.mutated - odd),
        )

    # -- events ---------------------------------------------------------------
    def read(self, name: str) -> None:
        if name not in self.bound:
            self.inputs.add(name)

    def bind(self, name: str) -> None:
        self.bound.add(name)
        self.statement_bound.add(name)
        self.outputs.add(name)

    def mutate(self, name: str, *, explicit: bool = True) -> None:
        if name in self.bound or name in self.modules:
            return
        if not explicit and name in self.environment:
            return
        self._mutated(name)

    def _mutated(self, name: str) -> None:
        if name not in self.modules:
            self.inputs.add(name)
            self.outputs.add(name)
            self.mutated.add(name)

    def nested(self, node: ast.AST, *, runs_now: bool) -> None:
        free = scan(node)
        for name in free.now if runs_now else ():
            self.read(name)
        for name in free.mut_now if runs_now else ():
            self.mutate(name)
        if not runs_now:
            self.deferred |= free.now
            self.deferred_mut |= free.mut_now
        self.deferred |= free.later
        self.deferred_mut |= free.mut_later
        for name in free.global_writes:
            self.bound.add(name)
            self.outputs.add(name)
        for name in free.outer_binds:
            self.bind(name)

    # -- statements -----------------------------------------------------------
    def visit_Expr(self, node: ast.Expr) -> None:
        self.visit(node.value)
        explicit = set(mutated_roots(node.value, discarded=False))
        if node is not self.displayed:
            for name in set(mutated_roots(node.value, discarded=True)) - explicit:
                self.mutate(name, explicit=False)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.target(target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        if node.value is not None or not isinstance(node.target, ast.Name):
            self.target(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):
            name = node.target.id
            self.read(name)
            self.visit(node.value)
            self.mutate(name)
            self.bind(name)
        else:
            self.visit(node.value)
            self.target(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.delete(target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.target(node.target)
        self.visit_all(node.body)
        self.visit_all(node.orelse)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.target(item.optional_vars)
        self.visit_all(node.body)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        fresh = node.name is not None and node.name not in self.bound
        if node.name is not None:
            self.bound.add(node.name)  # Python deletes it when the handler ends
        self.visit_all(node.body)
        if fresh and node.name is not None:
            self.bound.discard(node.name)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for name in _scopes.bound_names(node):
            self.bind(name)

    visit_ImportFrom = visit_Import

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.visit_all(_scopes.header_nodes(node))
        self.bind(node.name)
        self.nested(node, runs_now=False)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.visit_all(_scopes.header_nodes(node))
        self.nested(node, runs_now=True)
        self.bind(node.name)

    def visit_Global(self, node: ast.Global) -> None:
        return None

    # -- expressions ----------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.bind(node.id)
        else:
            self.delete(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind(node.target.id)

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        for name in mutated_roots(node, discarded=False):
            self.mutate(name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self.visit_all(_scopes.header_nodes(node))
        self.nested(node, runs_now=False)

    def visit_comprehension_scope(self, node: ast.AST) -> None:
        self.visit_all(_scopes.header_nodes(node))
        self.nested(node, runs_now=True)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_comprehension_scope
    visit_GeneratorExp = visit_comprehension_scope

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self.generic_visit(node)
        if node.name:
            self.bind(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self.generic_visit(node)
        if node.rest:
            self.bind(node.rest)

    # -- helpers --------------------------------------------------------------
    def visit_all(self, nodes: list[Any]) -> None:
        for node in nodes:
            self.visit(node)

    def target(self, node: ast.AST) -> None:
        """Bind an assignment target; ``x[k] = v`` / ``x.a = v`` mutate ``x``."""
        if isinstance(node, ast.Name):
            self.bind(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.target(element)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        elif isinstance(node, (ast.Attribute, ast.Subscript)):
            self.visit(node.value)
            if isinstance(node, ast.Subscript):
                self.visit(node.slice)
            for name in _scopes.store_roots(node):
                self.mutate(name)

    def delete(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            self.read(node.id)
            self.bound.discard(node.id)
            self.outputs.discard(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for element in node.elts:
                self.delete(element)
        else:
            self.target(node)
