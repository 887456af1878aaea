"""A template: a forked child that runs a notebook's setup cells once, then forks its tasks.

Forked by the fork server (``forkserver``, op ``template``) with one end of a socketpair.
It runs the setup cells (and the injected parameters) in the task shell, exactly as a task
would, checking after each cell that the process is still safe to fork: no new thread, no
new open file or socket, no child process still running. Then it reports the cells'
outputs and serves ``run`` requests like the fork server itself: each task is a fresh
process forked from it, with its own copy of the setup's namespace, running only the
task's own cells (load, step, persist).

A cell that fails or leaves something unsafe behind ends the template: the driver then
replays the setup cells in every task, as without a template, and says why.
"""

from __future__ import annotations

import gc
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nbflow.kernel import _threads
from nbflow.kernel._protocol import send_frame


def become_template(
    request: dict[str, Any],
    sock: socket.socket,
    *,
    close_fds: Sequence[int],
    parent_pid: int,
    set_parent_death_signal: Callable[[], None],
) -> NoReturn:
    from nbflow.kernel._child import run_forked

    def work() -> int:
        result = _run_setup(request["cells"], keep=sock.fileno())
        send_frame(sock, {"op": "template", "rid": request["rid"], **result})
        if result["status"] == "ready":
            _serve(sock)
        return 0

    run_forked(request, work, close_fds=close_fds, parent_pid=parent_pid,
               set_parent_death_signal=set_parent_death_signal)


def _run_setup(cells: list[str], *, keep: int) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    from nbflow.kernel._direct_child import capture_streams, run_one

    shell = InteractiveShell.instance()
    task_env = dict(os.environ)
    # Thread pools stay clamped while setup imports, as in the fork server; a task gets
    # them back from its own environment (see ``_threads``).
    os.environ.update(_threads.import_clamps(task_env))
    capture_streams()
    before = _resources(keep)
    done: list[dict[str, Any]] = []
    try:
        for index, source in enumerate(cells):
            outputs, count, success = run_one(shell, source)
            done.append({"index": index, "outputs": outputs, "execution_count": count})
            if not success:
                return {"status": "failed", "cells": done,
                        "reason": f"cell {index + 1} of the setup raised an error"}
            unsafe = _unsafe(before, _resources(keep))
            if unsafe:
                return {"status": "unsafe", "cells": done, "index": index, "reason": unsafe}
    finally:
        os.environ.clear()
        os.environ.update(task_env)
    gc.collect()
    gc.freeze()  # what setup made is shared with every task: no collections over it there
    return {"status": "ready", "cells": done}


def _resources(keep: int) -> dict[str, Any]:
    fds: dict[int, str] = {}
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            try:
                fds[fd] = os.readlink(f"/proc/self/fd/{name}")
            except OSError:  # the descriptor listdir itself used
                continue
    except OSError:  # no procfs: threads are still checked
        pass
    fds.pop(keep, None)
    children: list[str] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                children += f.read().split()
    except OSError:
        pass
    return {"threads": _threads.native_thread_count(),
            "names": sorted(t.name for t in threading.enumerate()),
            "fds": fds, "children": children}


def _unsafe(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """Why forking the process as it is now would not give each task what a replay gives."""
    if after["threads"] > before["threads"]:
        new = sorted(set(after["names"]) - set(before["names"]))
        named = f" ({', '.join(new)})" if new else ""
        return f"it started a thread{named}"
    opened = {fd: target for fd, target in after["fds"].items()
              if before["fds"].get(fd) != target}
    if opened:
        fd, target = min(opened.items())
        what = "a socket" if target.startswith("socket:") else target
        return f"it left {what} open (fd {fd})"
    if after["children"]:
        return f"it left a child process running (pid {after['children'][0]})"
    return None


def _serve(sock: socket.socket) -> None:
    from nbflow.kernel.forkserver import Zygote

    Zygote(sock).serve(announce=False)
