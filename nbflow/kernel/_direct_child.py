"""A forked child that runs a task's cells itself: the "direct" engine's far side.

An ipykernel costs a forked child ≈50 ms of CPU to initialise (traitlets apps, ZMQ
sockets, I/O threads) and every cell a ZMQ round trip. A task needs none of it: the
child is a fresh process with a fresh IPython namespace, runs the cells it was sent,
and writes each cell's outputs back to the driver as nbformat outputs (JSON lines on a
FIFO). The driver side is :mod:`nbflow.kernel.direct`.

The shell is made once in the zygote (``prepare_shell``), before any fork, so a child
starts with it ready; it is a plain ``InteractiveShell`` (magics, ``display``,
``get_ipython()``), with history in memory and output captured per cell.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Type
from traitlets.config import Config

from nbflow.kernel._protocol import PROFILE_ENV, PROFILE_LABEL_ENV

_SAVED: dict[str, Any] = {}


class _CapturingPublisher(DisplayPublisher):
    def publish(self, data: Any, metadata: Any = None, source: Any = None, *,
                transient: Any = None, update: bool = False, **kwargs: Any) -> None:
        _current().append({"output_type": "display_data", "data": dict(data),
                           "metadata": dict(metadata or {})})

    def clear_output(self, wait: bool = False) -> None:
        _current().clear()


class _CapturingHook(DisplayHook):
    def write_output_prompt(self) -> None:
        pass

    def write_format_data(self, format_dict: Any, md_dict: Any = None) -> None:
        _current().append({"output_type": "execute_result", "data": dict(format_dict),
                           "metadata": dict(md_dict or {}),
                           "execution_count": self.prompt_count})

    def finish_displayhook(self) -> None:
        pass


class TaskShell(InteractiveShell):
    """IPython as a kernel would run it, with every output kept as an nbformat output."""

    displayhook_class = Type(_CapturingHook)
    display_pub_class = Type(_CapturingPublisher)

    def _showtraceback(self, etype: Any, evalue: Any, stb: Any) -> None:
        _current().append({"output_type": "error", "ename": etype.__name__,
                           "evalue": str(evalue), "traceback": list(stb)})

    def enable_gui(self, gui: Any = None) -> None:  # like ipykernel: a headless no-op
        pass


class _Stream:
    """sys.stdout/sys.stderr of a task: text becomes stream outputs of the running cell."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.encoding = "utf-8"

    def write(self, text: str) -> int:
        if text:
            outputs = _current()
            if outputs and outputs[-1].get("name") == self.name:
                outputs[-1]["text"] += text
            else:
                outputs.append({"output_type": "stream", "name": self.name, "text": text})
        return len(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return 1 if self.name == "stdout" else 2

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


_outputs: list[list[dict[str, Any]]] = [[]]


def _current() -> list[dict[str, Any]]:
    return _outputs[-1]


def prepare_shell() -> None:
    """Make the task shell in the zygote, once, before it forks a direct child."""
    if InteractiveShell.initialized():
        return
    _SAVED["main"] = sys.modules.get("__main__")
    _SAVED["displayhook"] = sys.displayhook
    _SAVED["excepthook"] = sys.excepthook
    config = Config()
    config.HistoryManager.hist_file = ":memory:"  # no history thread, no shared SQLite file
    TaskShell.instance(config=config)


def forget_shell() -> None:
    """In a child that becomes an ipykernel: leave no trace of the zygote's task shell."""
    if not InteractiveShell.initialized():
        return
    InteractiveShell.clear_instance()
    if _SAVED.get("main") is not None:
        sys.modules["__main__"] = _SAVED["main"]
    sys.displayhook = _SAVED.get("displayhook", sys.__displayhook__)
    sys.excepthook = _SAVED.get("excepthook", sys.__excepthook__)


def run_cells(
    request: dict[str, Any],
    *,
    close_fds: Sequence[int],
    parent_pid: int,
    set_parent_death_signal: Callable[[], None],
) -> NoReturn:
    from nbflow.kernel._child import run_forked

    profile_dir = request["env"].get(PROFILE_ENV)
    profiler = _start_profile() if profile_dir else None

    def finished() -> None:  # before the driver hears "end" (it may then kill the child)
        if profiler is not None and profile_dir:
            _save_profile(profiler, profile_dir, request["env"].get(PROFILE_LABEL_ENV, "task"))

    def work() -> int:
        fifo = os.open(request["fifo"], os.O_WRONLY)
        _run(request["cells"], fifo, finished)
        return 0

    run_forked(request, work, close_fds=close_fds, parent_pid=parent_pid,
               set_parent_death_signal=set_parent_death_signal)


def _run(cells: list[str | None], fifo: int,
         finished: Callable[[], None] = lambda: None) -> None:
    shell = InteractiveShell.instance()
    capture_streams()
    for index, source in enumerate(cells):
        if source is None:
            continue
        _send(fifo, {"op": "start", "index": index})
        outputs, count, success = run_one(shell, source)
        _send(fifo, {"op": "done", "index": index, "outputs": outputs,
                     "execution_count": count})
        if not success:
            break
    finished()
    _send(fifo, {"op": "end"})
    os.close(fifo)


def capture_streams() -> None:
    """Make ``""`` the first path entry (as IPython's init_path does for a kernel) and
    send stdout/stderr to the running cell's outputs."""
    if not sys.path or sys.path[0] != "":
        sys.path.insert(0, "")
    if not isinstance(sys.stdout, _Stream):
        sys.stdout, sys.stderr = _Stream("stdout"), _Stream("stderr")


def run_one(shell: InteractiveShell, source: str) -> tuple[list[dict[str, Any]], int, bool]:
    """Run one cell: its nbformat outputs, its execution count, whether it succeeded."""
    outputs: list[dict[str, Any]] = []
    _outputs.append(outputs)
    try:
        result = shell.run_cell(source, store_history=True)
    finally:
        _outputs.pop()
    return outputs, shell.execution_count - 1, bool(result.success)


def _start_profile() -> Any:
    import cProfile
    import time

    profiler = cProfile.Profile()
    profiler.started_at = time.perf_counter()  # type: ignore[attr-defined]
    profiler.enable()
    return profiler


def _save_profile(profiler: Any, directory: str, label: str) -> None:
    import io
    import pstats
    import time

    profiler.disable()
    wall = time.perf_counter() - profiler.started_at
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, f"{label}-{os.getpid()}")
    profiler.dump_stats(base + ".prof")
    text = io.StringIO()
    text.write(f"task {label}, pid {os.getpid()}: {wall * 1000:.1f} ms from fork to the end "
               "of its last cell (under the profiler)\n")
    for order in ("cumulative", "tottime"):
        pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(20)
    with open(base + ".txt", "w", encoding="utf-8") as f:
        f.write(text.getvalue())


def _send(fd: int, message: dict[str, Any]) -> None:
    data = memoryview((json.dumps(message, default=repr) + "\n").encode())
    while data:
        data = data[os.write(fd, data):]
