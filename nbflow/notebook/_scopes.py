"""Free-name analysis of nested scopes (functions, lambdas, classes, comprehensions).

``names.py`` walks a cell's top level in execution order; whenever it meets a
nested scope it asks :func:`scan` which module-level names that scope reads or
mutates, and whether it does so *now* (class bodies, comprehensions) or *later*
(function and lambda bodies run when called).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

# Calling one of these on an object changes it in place (list/dict/set, sklearn).
MUTATING_METHODS = frozenset(
    {
        "pop", "popitem", "update", "append", "extend", "insert", "remove", "clear",
        "sort", "reverse", "add", "discard", "setdefault", "fit", "partial_fit",
    }
)  # fmt: skip

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
SCOPES = (*FUNCTIONS, ast.ClassDef, *COMPREHENSIONS)


@dataclass
class Free:
    """Module-level names a nested scope touches."""

    now: set[str] = field(default_factory=set)  # read when the scope runs
    later: set[str] = field(default_factory=set)  # read when a function inside is called
    mut_now: set[str] = field(default_factory=set)
    mut_later: set[str] = field(default_factory=set)
    global_writes: set[str] = field(default_factory=set)  # `global x; x = ...`
    outer_binds: set[str] = field(default_factory=set)  # walrus inside a comprehension


def root_name(node: ast.AST) -> str | None:
    """``x`` for ``x``, ``x.a``, ``x[0].b``; None when the chain starts elsewhere."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def mutated_roots(node: ast.AST, *, discarded: bool) -> Iterator[str]:
    """Names ``node`` (one node, not its children) likely changes in place."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        inplace = any(
            k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
            for k in node.keywords
        )
        if discarded or inplace or node.func.attr in MUTATING_METHODS:
            yield from _opt(root_name(node.func.value))
    elif isinstance(node, (ast.Assign, ast.Delete)):
        for target in node.targets:
            yield from store_roots(target)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        if not isinstance(node.target, ast.Name):
            yield from store_roots(node.target)


def store_roots(target: ast.AST) -> Iterator[str]:
    """Base names of subscript/attribute targets in an assignment or ``del``."""
    if isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from store_roots(element)
    elif isinstance(target, ast.Starred):
        yield from store_roots(target.value)
    elif isinstance(target, (ast.Attribute, ast.Subscript)):
        yield from _opt(root_name(target))


def _opt(name: str | None) -> Iterator[str]:
    if name is not None:
        yield name


def header_nodes(node: ast.AST) -> list[ast.AST]:
    """Parts of a scope node evaluated in the *enclosing* scope."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [*node.decorator_list, *_arg_header(node.args), *_opt_node(node.returns)]
    if isinstance(node, ast.Lambda):
        return [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *node.keywords]
    if isinstance(node, COMPREHENSIONS):
        return [node.generators[0].iter]
    return []


def _arg_header(args: ast.arguments) -> Iterator[ast.AST]:
    yield from args.defaults
    yield from (d for d in args.kw_defaults if d is not None)
    for arg in _all_args(args):
        yield from _opt_node(arg.annotation)


def _opt_node(node: ast.AST | None) -> list[ast.AST]:
    return [] if node is None else [node]


def _all_args(args: ast.arguments) -> list[ast.arg]:
    extra = [a for a in (args.vararg, args.kwarg) if a is not None]
    return [*args.posonlyargs, *args.args, *args.kwonlyargs, *extra]


def _body(node: ast.AST) -> tuple[set[str], list[ast.AST]]:
    """A scope's parameters and the nodes evaluated inside it."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return {a.arg for a in _all_args(node.args)}, list(node.body)
    if isinstance(node, ast.Lambda):
        return {a.arg for a in _all_args(node.args)}, [node.body]
    if isinstance(node, ast.ClassDef):
        return set(), list(node.body)
    assert isinstance(node, COMPREHENSIONS)
    elts: list[ast.AST] = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    gens = node.generators
    return set(), [*elts, *(g.target for g in gens), *(g.iter for g in gens[1:]),
                   *(i for g in gens for i in g.ifs)]  # fmt: skip


def split_scope(roots: Iterable[ast.AST]) -> tuple[list[ast.AST], list[ast.AST]]:
    """Nodes that belong to this scope, and the nested scopes found in it."""
    own: list[ast.AST] = []
    children: list[ast.AST] = []
    stack = list(roots)
    while stack:
        node = stack.pop()
        own.append(node)
        if isinstance(node, SCOPES):
            children.append(node)
            stack.extend(header_nodes(node))
        else:
            stack.extend(ast.iter_child_nodes(node))
    return own, children


def bound_names(node: ast.AST) -> Iterator[str]:
    """Names one node binds in the scope it belongs to."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        yield node.id
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name.split(".")[0]
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest


def scan(scope: ast.AST) -> Free:
    """Which module-level names ``scope`` reads, mutates and binds."""
    params, roots = _body(scope)
    own, children = split_scope(roots)
    is_comp = isinstance(scope, COMPREHENSIONS)
    walrus = {n.target.id for n in own if isinstance(n, ast.NamedExpr)}
    results = [(child, scan(child)) for child in children]
    declared_global = {n for g in own if isinstance(g, ast.Global) for n in g.names}
    declared_nonlocal = {n for g in own if isinstance(g, ast.Nonlocal) for n in g.names}
    binds = params | {name for node in own for name in bound_names(node)}
    free = Free(outer_binds=set(walrus) if is_comp else set())
    for _, r in results:
        (free.outer_binds if is_comp else binds).update(r.outer_binds)
    if is_comp:
        binds -= walrus
    local = binds - declared_global - declared_nonlocal
    free.global_writes = declared_global & binds
    discard = isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef))
    reads = {n.id for n in own if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    reads |= {
        n.target.id for n in own if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
    }
    muts = _mutations(own, discard)
    _resolve(free, reads, local, declared_global, later=False)
    _resolve(free, muts, local, declared_global, later=False, mutation=True)
    visible = set() if isinstance(scope, ast.ClassDef) else local
    for child, r in results:
        deferred = isinstance(child, FUNCTIONS)
        _resolve(free, r.now, visible, declared_global, later=deferred)
        _resolve(free, r.later, visible, declared_global, later=True)
        _resolve(free, r.mut_now, visible, declared_global, later=deferred, mutation=True)
        _resolve(free, r.mut_later, visible, declared_global, later=True, mutation=True)
        free.global_writes |= r.global_writes
    return free


def _mutations(own: list[ast.AST], discard: bool) -> set[str]:
    """Names the scope's own nodes likely mutate; ``discard``: a bare call statement counts."""
    statement_calls = {id(n.value) for n in own if isinstance(n, ast.Expr)}
    found: set[str] = set()
    for node in own:
        if isinstance(node, ast.Expr):
            found.update(mutated_roots(node.value, discarded=discard))
        elif id(node) not in statement_calls:
            found.update(mutated_roots(node, discarded=False))
    return found


def _resolve(
    free: Free,
    names: Iterable[str],
    local: set[str],
    declared_global: set[str],
    *,
    later: bool,
    mutation: bool = False,
) -> None:
    for name in names:
        if name in declared_global:
            (free.mut_later if mutation else free.later).add(name)
        elif name not in local:
            if mutation:
                (free.mut_later if later else free.mut_now).add(name)
            else:
                (free.later if later else free.now).add(name)
