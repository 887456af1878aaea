"""``%%step``, ``%%branch`` and ``%nbflow`` in a live kernel: the notebook stays a notebook.

``%%step`` runs its body in the user's namespace exactly like a plain cell and records
the step. ``%%branch NAME --foreach ITEMS --as VAR`` runs its body once per element,
each in its own copy of the namespace as it was before the branch (values the body reads
are copied from their serialized form, as each headless task loads its own), and
binds NAME to the list of per-element namespaces a headless join receives. Names bound
inside a branch do not leak into the notebook, just as they do not headless.

A bad magic line is a one-line ``UsageError`` naming the problem, never a traceback.
Inside a headless task (``NBFLOW_RUN`` is set) ``%nbflow run`` refuses to start a run.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbflow.errors import MagicArgumentError, NbflowError, NotebookError
from nbflow.interactive.body import run_body
from nbflow.interactive.notebook_file import RanStep, current_notebook

LINE_USAGE = """\
%nbflow run [NOTEBOOK] [--wait] [OPTIONS]   run the notebook headless, with a live view
                                            (OPTIONS: those of `nbflow execute`)
%nbflow history [FLOW] [--all] [--home DIR] the runs table (this notebook's flow by default)
%nbflow checkout FLOW/RUN/STEP[/TASK] [--outputs] [--home DIR]
                                            load a task's inputs (and outputs) to debug it
%nbflow record on|off                       record live %%step runs so `nbflow execute`
                                            reuses them (on when the notebook file is known)
%nbflow snapshot GLOB...                    in a setup cell: every step's cache key covers
                                            these files (as --snapshot on each step)"""


@dataclass
class Session:
    """What this kernel's magics remember: the steps it ran, the runs it started."""

    ran: dict[str, RanStep] = field(default_factory=dict)
    runs: list[Any] = field(default_factory=list)
    histories: list[Any] = field(default_factory=list)
    recording: Any = None  # record.Recording, once the notebook file is known
    record: bool = True  # `%nbflow record off` stops recording live steps


def register(ipython: Any) -> Session:
    session = Session()

    def step(line: str, cell: str) -> None:
        __tracebackhide__ = True
        _step_magic(ipython, session, line, cell)

    def branch(line: str, cell: str) -> None:
        __tracebackhide__ = True
        _branch_magic(ipython, session, line, cell)

    def nbflow(line: str) -> None:
        __tracebackhide__ = True
        _line_magic(ipython, session, line)

    for function in (step, branch, nbflow):
        # parity with headless parsing: `{x}` and `$x` in a magic line stay literal
        setattr(function, "_ipython_magic_no_var_expand", True)  # noqa: B010
    ipython.register_magic_function(step, magic_kind="cell", magic_name="step")
    ipython.register_magic_function(branch, magic_kind="cell", magic_name="branch")
    ipython.register_magic_function(nbflow, magic_kind="line", magic_name="nbflow")
    ipython.nbflow_session = session
    return session


def _usage_error(message: str) -> Exception:
    from IPython.core.error import UsageError

    return UsageError(message)


def _parse(kind: str, line: str) -> Any:
    from nbflow.notebook.magics import parse_magic_args

    try:
        return parse_magic_args(kind, line)
    except MagicArgumentError as exc:
        raise _usage_error(str(exc)) from None


def _check_body(kind: str, name: str, shell: Any, body: str) -> None:
    """A syntax problem the headless reader would also reject, as a one-line message."""
    from nbflow.notebook.names import analyze

    try:
        analyze(body)
    except NotebookError as exc:
        raise _usage_error(f"%%{kind} {name}: {exc}") from None
    if "await" in body:
        from nbflow.interactive.body import compile_body

        try:
            compile_body(shell, body)
        except SyntaxError as exc:
            if "await" in str(exc):
                raise _usage_error(
                    f"%%{kind} {name}: top-level `await` is not supported in a live step "
                    "cell; wrap the coroutine in asyncio.run(...) or a helper function"
                ) from None


def _step_magic(shell: Any, session: Session, line: str, cell: str) -> None:
    __tracebackhide__ = True
    magic = _parse("step", line)
    _check_body("step", magic.name, shell, cell)
    session.ran[magic.name] = RanStep("step", cell)
    prepared = _prepare_recording(shell, session, magic.name, cell)
    started = time.time()
    run_body(shell, cell)
    if prepared is not None:
        _record(session, prepared, shell.user_ns, started)


def _prepare_recording(shell: Any, session: Session, name: str, body: str) -> Any:
    """The step's identity for the catalog, if this execution can be recorded."""
    from nbflow.interactive import record

    notebook = current_notebook(shell.user_ns)
    if not session.record or notebook is None or os.environ.get("NBFLOW_RUN"):
        return None
    from nbflow.store.home import Home

    home = Home(None)
    current = session.recording
    if current is None or current.notebook != notebook or current.home.url != home.url:
        session.recording = record.Recording(notebook, home, Path(notebook).stem)
    try:
        return record.prepare_step(session.recording, name, body, shell.user_ns)
    except Exception as exc:  # recording is a bonus: never fail the user's cell for it
        print(f"nbflow: step {name!r} ran but could not be recorded: {exc}", file=sys.stderr)
        return None


def _record(session: Session, prepared: Any, user_ns: dict[str, Any], started: float) -> None:
    from nbflow.interactive import record

    step, parts = prepared
    try:
        record.record_step(session.recording, step, parts, user_ns, started)
    except Exception as exc:  # as above: the cell itself succeeded
        print(f"nbflow: step {step.name!r} ran but could not be recorded: {exc}",
              file=sys.stderr)


def _branch_magic(shell: Any, session: Session, line: str, cell: str) -> None:
    __tracebackhide__ = True
    from nbflow.interactive.fresh import Snapshot, fresh
    from nbflow.kernel.namespace import Namespace
    from nbflow.notebook.names import analyze

    magic = _parse("branch", line)
    _check_body("branch", magic.name, shell, cell)
    if magic.foreach not in shell.user_ns:
        raise _usage_error(
            f"%%branch {magic.name}: --foreach {magic.foreach} names nothing defined yet; "
            f"run the cell that defines {magic.foreach!r} first")
    items = shell.user_ns[magic.foreach]
    try:
        elements = list(items)
    except TypeError:
        raise _usage_error(f"%%branch {magic.name}: --foreach {magic.foreach} is a "
                           f"{type(items).__name__}, which cannot be iterated") from None
    info = analyze(cell)
    outputs = info.outputs
    session.ran[magic.name] = RanStep("branch", cell)
    before = Snapshot(shell.user_ns, info.inputs - {magic.as_})
    results = []
    for index, element in enumerate(elements):
        item = fresh(element)  # a task loads its own copy of its element
        namespace = dict(shell.user_ns)
        namespace.update(before.view())
        namespace[magic.as_] = item
        try:
            run_body(shell, cell, namespace)
        except Exception as exc:
            where = f"%%branch {magic.name}: task {index} ({magic.as_} = {_short(item)}) failed"
            exc.add_note(where)  # IPython 8 does not show notes: say it on stderr too
            print(where, file=sys.stderr)
            raise
        bound = {n: namespace[n] for n in outputs if n in namespace and not n.startswith("_")}
        bound[magic.as_] = item
        results.append(Namespace(bound, label=f"{magic.name}[{index}]"))
    shell.user_ns[magic.name] = results


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _line_magic(shell: Any, session: Session, line: str) -> None:
    try:
        args = shlex.split(line)
    except ValueError as exc:
        raise _usage_error(f"%nbflow: cannot split the arguments ({exc})") from None
    command, rest = (args[0], args[1:]) if args else ("help", [])
    handlers = {"run": _run, "history": _history, "checkout": _checkout, "record": _record_switch,
                "snapshot": _snapshot}
    if command in ("help", "-h", "--help"):
        print(LINE_USAGE)
        return
    if command not in handlers:
        raise _usage_error(f"%nbflow: unknown command {command!r}\n{LINE_USAGE}")
    try:
        handlers[command](shell, session, rest)
    except NbflowError as exc:
        raise _usage_error(f"%nbflow {command}: {exc}") from None


def _run(shell: Any, session: Session, args: list[str]) -> None:
    from nbflow.interactive.launch import LaunchError, launch

    if os.environ.get("NBFLOW_RUN"):
        print(f"%nbflow run: skipped inside the headless task of {os.environ['NBFLOW_RUN']}")
        return
    try:
        session.runs.append(launch(args, default_notebook=current_notebook(shell.user_ns),
                                   ran=session.ran))
    except LaunchError as exc:
        if str(exc):
            raise _usage_error(str(exc)) from None


def _snapshot(shell: Any, session: Session, args: list[str]) -> None:
    """Headless runs read the globs from the setup cell; live, check they match a file."""
    import glob

    if not args:
        raise _usage_error("%nbflow snapshot: give one or more GLOBs, e.g. data/*.csv")
    notebook = current_notebook(shell.user_ns)
    directory = str(Path(notebook).resolve().parent) if notebook else os.getcwd()
    for pattern in args:
        if not any(os.path.isfile(m) for m in glob.glob(os.path.join(directory, pattern),
                                                        recursive=True)):
            raise _usage_error(f"%nbflow snapshot: {pattern} matches no file (looked in "
                               f"{directory}); the path is relative to the notebook's folder")


def _options(args: list[str], flags: set[str], valued: set[str],
             command: str) -> tuple[list[str], dict[str, Any]]:
    positional: list[str] = []
    found: dict[str, Any] = {}
    tokens = iter(args)
    for token in tokens:
        if token in flags:
            found[token] = True
        elif token in valued:
            value = next(tokens, None)
            if value is None:
                raise _usage_error(f"%nbflow {command}: {token} needs a value")
            found[token] = value
        elif token.startswith("-"):
            options = ", ".join(sorted(flags | valued))
            raise _usage_error(f"%nbflow {command}: unknown option {token} (options: {options})")
        else:
            positional.append(token)
    return positional, found


def _history(shell: Any, session: Session, args: list[str]) -> None:
    from pathlib import Path

    from nbflow.widgets import show_history

    positional, found = _options(args, {"--all"}, {"--home"}, "history")
    if len(positional) > 1:
        raise _usage_error("%nbflow history: give at most one FLOW (a notebook's stem)")
    notebook = current_notebook(shell.user_ns)
    flow = positional[0] if positional else None
    if flow is None and not found.get("--all") and notebook is not None:
        flow = Path(notebook).stem
    session.histories.append(show_history(flow, home=found.get("--home")))


def _record_switch(shell: Any, session: Session, args: list[str]) -> None:
    if args not in (["on"], ["off"]):
        raise _usage_error("%nbflow record on|off: record live %%step runs for reuse headless")
    session.record = args == ["on"]
    print(f"nbflow: live steps are {'recorded' if session.record else 'not recorded'}")


def _checkout(shell: Any, session: Session, args: list[str]) -> None:
    from nbflow.interactive.checkout import checkout

    positional, found = _options(args, {"--outputs"}, {"--home"}, "checkout")
    if len(positional) != 1:
        raise _usage_error("%nbflow checkout: name one task, e.g. "
                           "%nbflow checkout classifier/3/sweep/1")
    result = checkout(positional[0], outputs=bool(found.get("--outputs")),
                      home=found.get("--home"), defined=set(shell.user_ns))
    shell.user_ns.update(result.values)
    print(result.report())
