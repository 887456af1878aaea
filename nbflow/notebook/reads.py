"""What a cell reads from outside the notebook, found in its code (pure ``ast``, no kernels).

Two kinds of read matter to the cache:

* **files** named by a path the code spells out: ``open("data/x.csv")``,
  ``pd.read_csv(f"data/{dataset}.csv")``, ``np.load(path)`` for a parameter ``path``,
  ``Path("cfg.json").read_text()``, ``json.load(open(...))``, ``xr.open_dataset(...)``,
  ``pl.scan_parquet(...)``, ``cv2.imread(...)``, ``Image.open(...)``,
  ``h5py.File(...)``. A path is a string
  literal, an f-string of literals and parameters, a parameter, or a name the cell
  (or a setup cell) binds to a string literal. A read through anything else is
  *unresolved*: the planner cannot know the file, and ``nbflow show`` says so.
* **other runs** read through the client API: ``Flow("train").latest_successful_run``,
  ``Flow("train").latest_run``, ``Run("train/4")``, ``Step("train/4/fit")``,
  ``Task("train/4/fit/0")`` (also as ``nbflow.Flow(...)``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from functools import lru_cache

from nbflow.notebook.names import parsed, to_python
from nbflow.notebook.spec import NotebookSpec, StepSpec


@dataclass(frozen=True)
class Param:
    """A parameter's value as (part of) a path."""

    name: str


@dataclass(frozen=True)
class FileRead:
    line: int  # 1-based line in the cell's code
    call: str  # what reads, e.g. "pd.read_csv"
    path: tuple[str | Param, ...] | None  # the path's pieces; None: not resolvable
    text: str  # the path expression as written
    cell: int = 0  # the notebook cell (set by notebook_file_reads)

    def resolve(self, params: dict[str, object]) -> str | None:
        if self.path is None:
            return None
        out = []
        for piece in self.path:
            if isinstance(piece, Param):
                value = params.get(piece.name)
                if value is None or isinstance(value, (list, dict, tuple, set)):
                    return None
                out.append(str(value))
            else:
                out.append(piece)
        return "".join(out)


@dataclass(frozen=True)
class RunRead:
    """A client-API read of another run: ``Flow(flow).<which>`` or a pathspec."""

    line: int
    flow: str
    which: str  # "latest_successful_run" | "latest_run" | "pathspec"
    pathspec: str | None = None  # for Run/Step/Task("flow/run/...")

    @property
    def label(self) -> str:
        """How the cache key names the read: the code's own words."""
        if self.which == "pathspec":
            return f"Run({self.pathspec!r})"
        return f"Flow({self.flow!r}).{self.which}"


_READ_TEXT = {"read_text", "read_bytes", "open"}
_NOT_FILES = {"read_sql", "read_sql_query", "read_sql_table", "read_gbq", "read_clipboard",
              "read_html"}
_LOADERS = {"np": {"load", "loadtxt", "genfromtxt", "fromfile"},
            "numpy": {"load", "loadtxt", "genfromtxt", "fromfile"},
            "joblib": {"load"}, "torch": {"load"}, "Image": {"open"}, "h5py": {"File"}}
# Module functions that read the file named by their first argument, by prefix
# (xarray's open_dataset/open_mfdataset/open_zarr, polars' scan_csv/scan_parquet) and by
# name (cv2, imageio, skimage.io, matplotlib's imread).
_READ_PREFIXES = ("open_", "scan_")
_READ_NAMES = {"imread"}
_PATH_KEYWORDS = ("file", "fname", "filepath_or_buffer", "path", "path_or_buf", "io", "source")
_CLIENT_CLASSES = {"Flow", "Run", "Step", "Task"}
_WHICH = {"latest_successful_run", "latest_run"}
# Every read found below names one of these in the code: a cell whose (ASCII) text has
# none of them has no read. (Non-ASCII identifiers are normalized by the parser, so a
# text that is not ASCII is always walked.)
_MAY_READ = re.compile(r"open|read_|load|fromfile|genfromtxt|scan_|imread|File|Flow|Run|Step|Task")


def string_constants(sources: list[str]) -> dict[str, str]:
    """Names bound at top level, once, to a string literal: ``DATA = "data/x.csv"``."""
    found: dict[str, str] = {}
    rebound: set[str] = set()
    for source in sources:
        for name, value in _assignments(source):
            if name not in found and value is not None:
                found[name] = value
            else:
                rebound.add(name)
    return {k: v for k, v in found.items() if k not in rebound}


@lru_cache(maxsize=8192)
def _assignments(source: str) -> tuple[tuple[str, str | None], ...]:
    """The cell's top-level ``NAME = ...`` statements in order: (name, the string literal
    or None for any other value)."""
    tree = parsed(source)
    if tree is None:
        return ()
    found = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            value = node.value
            literal = (value.value if isinstance(value, ast.Constant)
                       and isinstance(value.value, str) else None)
            found.append((node.targets[0].id, literal))
    return tuple(found)


def file_reads(source: str, parameters: frozenset[str], constants: dict[str, str]) -> list[FileRead]:
    """Every file read the cell's code makes, resolvable or not."""
    reads = [FileRead(line, label, _pieces(target, parameters, constants), text)
             for line, label, target, text in _read_calls(source)]
    return sorted(reads, key=lambda r: (r.line, r.call))


def _read_calls(source: str) -> tuple[tuple[int, str, ast.expr | None, str], ...]:
    """The calls that read a file: (line, what reads, the path expression, its text).
    Which path each names depends on the parameters and constants around the cell, so
    that part is left to :func:`file_reads`."""
    return _cell_reads(source)[0]


def run_reads(source: str) -> list[RunRead]:
    """Every read of another run through the client API that names its flow literally."""
    return list(_cell_reads(source)[1])


@lru_cache(maxsize=8192)
def _cell_reads(source: str) -> tuple[tuple[tuple[int, str, ast.expr | None, str], ...],
                                      tuple[RunRead, ...]]:
    """File-read calls and run reads of one cell text, found in one walk of its tree."""
    tree = parsed(source)
    if tree is None:
        return (), ()
    python = to_python(source)
    if python.isascii() and _MAY_READ.search(python) is None:
        return (), ()  # no name a read needs is in the text: no walk (most cells)
    calls = []
    runs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            call = _file_read(node)
            if call is not None:
                label, target = call
                text = ast.unparse(target) if target is not None else "?"
                calls.append((node.lineno, label, target, text))
            spec = _client_call(node, _CLIENT_CLASSES - {"Flow"})
            if spec is not None and "/" in spec:
                runs.append(RunRead(node.lineno, spec.split("/")[0], "pathspec", spec))
        elif isinstance(node, ast.Attribute) and node.attr in _WHICH:
            flow = _client_call(node.value, {"Flow"})
            if flow is not None:
                runs.append(RunRead(node.lineno, flow, node.attr))
    return tuple(calls), tuple(sorted(set(runs), key=lambda r: (r.line, r.flow, r.which)))


def _client_call(node: ast.AST, classes: set[str]) -> str | None:
    """``Flow("x")`` / ``nbflow.Run("x/4")`` → its literal argument."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else None)
    arg = node.args[0]
    if name in classes and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    return None


def _file_read(call: ast.Call) -> tuple[str, ast.expr | None] | None:
    """(what reads, the path expression) if ``call`` reads a file."""
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open":
        if _writes(call, 1):
            return None
        return "open", _argument(call)
    if isinstance(func, ast.Attribute):
        receiver = func.value
        if func.attr in _READ_TEXT and _is_path_call(receiver):
            if func.attr == "open" and _writes(call, 0):
                return None
            assert isinstance(receiver, ast.Call)
            return f"Path(...).{func.attr}", _argument(receiver)
        if isinstance(receiver, ast.Name) and func.attr in _LOADERS.get(receiver.id, ()):
            if func.attr in ("open", "File") and _writes(call, 1):
                return None
            return f"{receiver.id}.{func.attr}", _argument(call)
        if _module_like(receiver) and (func.attr.startswith(_READ_PREFIXES)
                                       or func.attr in _READ_NAMES):
            return f"{ast.unparse(receiver)}.{func.attr}", _argument(call)
        if (isinstance(receiver, ast.Name) and func.attr.startswith("read_")
                and func.attr not in _NOT_FILES and func.attr not in _READ_TEXT):
            return f"{receiver.id}.{func.attr}", _argument(call)
    return None


def _module_like(node: ast.expr) -> bool:
    """``xr`` or ``skimage.io``: a name or a dotted name, not a call or a subscript."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _is_path_call(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else "")
    return name in ("Path", "PurePath", "PosixPath")


def _argument(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in _PATH_KEYWORDS), None)


def _writes(call: ast.Call, position: int) -> bool:
    mode: ast.expr | None = call.args[position] if len(call.args) > position else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return (isinstance(mode, ast.Constant) and isinstance(mode.value, str)
            and any(c in mode.value for c in "wax+"))


def _pieces(node: ast.expr | None, parameters: frozenset[str],
            constants: dict[str, str]) -> tuple[str | Param, ...] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.Name):
        if node.id in parameters:
            return (Param(node.id),)
        if node.id in constants:
            return (constants[node.id],)
        return None
    if isinstance(node, ast.JoinedStr):
        pieces: list[str | Param] = []
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                pieces.append(part.value)
            elif (isinstance(part, ast.FormattedValue) and part.conversion == -1
                  and part.format_spec is None):
                inner = _pieces(part.value, parameters, constants)
                if inner is None:
                    return None
                pieces.extend(inner)
            else:
                return None
        return tuple(pieces)
    return None


def notebook_file_reads(spec: NotebookSpec, step: StepSpec) -> list[FileRead]:
    """The file reads of the setup cells and of ``step``: what its task reads."""
    setup = [c.source for c in spec.setup if not c.is_parameters]
    constants = string_constants([*setup, step.source])
    parameters = frozenset(p.name for p in spec.parameters)
    found = [replace(r, cell=c.cell) for c in spec.setup if not c.is_parameters
             for r in file_reads(c.source, parameters, constants)]
    step_parameters = parameters - step.outputs
    return [*found, *(replace(r, cell=step.cell)
                      for r in file_reads(step.source, step_parameters, constants))]


def notebook_run_reads(spec: NotebookSpec, step: StepSpec) -> list[RunRead]:
    """The client-API reads of other runs in the setup cells and in ``step``."""
    sources = [c.source for c in spec.setup if not c.is_parameters] + [step.source]
    return [r for source in sources for r in run_reads(source)]
