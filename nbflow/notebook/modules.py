"""The notebook folder's own modules a task imports: their code is part of the task's code.

``import helpers`` (or ``from helpers import f``) in a setup cell or a step, where
``helpers.py`` or a package ``helpers/`` sits in the notebook's folder (the first entry
of a task's ``sys.path``), puts that file's content into the task's cache key, and so
does every module of that folder it imports in turn, relative imports included. An edit
to ``helpers.py`` therefore re-runs the steps that use it, and ``nbflow why`` says
"file helpers.py changed".

Modules are found by path and parsed, never imported: planning runs no user code.
Modules outside the folder (the standard library, site-packages) are not followed: they
change with an install, not with an edit. Neither are imports the code cannot spell out
(``importlib.import_module(name)``) nor folders added to ``sys.path`` at run time.
"""

from __future__ import annotations

import ast
import os
from functools import lru_cache

from nbflow.notebook.names import parsed
from nbflow.notebook.spec import NotebookSpec, StepSpec


def step_modules(spec: NotebookSpec, step: StepSpec, directory: str) -> list[str]:
    """The folder's modules a task of ``step`` imports (its setup cells' and its own),
    relative to ``directory``."""
    sources = [c.source for c in spec.setup if not c.is_parameters] + [step.source]
    return [os.path.relpath(m, directory) for m in local_modules(sources, directory)]


def local_modules(sources: list[str], directory: str) -> list[str]:
    """The files under ``directory`` that importing what ``sources`` import would run."""
    root = os.path.abspath(directory)
    found: set[str] = set()
    pending = [(name, root) for source in sources for name in _cell_imports(source)]
    while pending:
        name, base = pending.pop()
        for path in _files_of(name, base, root):
            if path in found:
                continue
            found.add(path)
            pending.extend(_module_imports(path, root))
    return sorted(found)


@lru_cache(maxsize=8192)  # setup cells are read once per step; a pure function of the text
def _cell_imports(source: str) -> tuple[str, ...]:
    if "import" not in source:
        return ()  # most cells: no walk
    tree = parsed(source)
    if tree is None:
        return ()
    return tuple(name for name, level in _imports(tree) if level == 0)


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(dotted module name, relative level) of every import in ``tree``, at any depth;
    ``from a import b`` also names ``a.b`` (it may be a submodule)."""
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names.append((base, node.level))
            names.extend((f"{base}.{alias.name}" if base else alias.name, node.level)
                         for alias in node.names if alias.name != "*")
    return names


def _files_of(name: str, base: str, root: str) -> list[str]:
    """The files importing ``name`` from folder ``base`` runs: each package's
    ``__init__.py`` on the way, then the module itself. Nothing if it is not there."""
    files: list[str] = []
    folder = base
    for part in name.split(".") if name else []:
        module = os.path.join(folder, part + ".py")
        package = os.path.join(folder, part)
        if os.path.isfile(module):
            files.append(module)
            break
        if not os.path.isdir(package):
            break
        init = os.path.join(package, "__init__.py")
        if os.path.isfile(init):
            files.append(init)
        folder = package
    return [f for f in files if os.path.commonpath([root, f]) == root]


def _module_imports(path: str, root: str) -> list[tuple[str, str]]:
    """What the module at ``path`` imports, each with the folder to resolve it from."""
    try:
        stat = os.stat(path)
    except OSError:
        return []
    here = os.path.dirname(path)
    out = []
    for name, level in _parsed_imports(path, stat.st_mtime_ns, stat.st_size):
        if level == 0:
            out.append((name, root))
        else:
            base = here
            for _ in range(level - 1):
                base = os.path.dirname(base)
            out.append((name, base))
    return out


@lru_cache(maxsize=1024)
def _parsed_imports(path: str, _mtime_ns: int, _size: int) -> tuple[tuple[str, int], ...]:
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return ()  # the task's import will fail and say why; the file's hash still counts
    return tuple(_imports(tree))
