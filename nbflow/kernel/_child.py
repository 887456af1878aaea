"""What a forked child does to become an ordinary, isolated ipykernel.

Runs in the child right after ``fork()`` in the zygote and never returns: whatever happens,
the child ends in ``os._exit`` so it can never fall back into the zygote's serving loop.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nbflow.kernel import _threads

# Signals the zygote handles for itself; a kernel starts from the defaults, like a spawn.
_RESET_SIGNALS = ("SIGCHLD", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")


def become_kernel(
    request: dict[str, Any],
    *,
    close_fds: Sequence[int],
    parent_pid: int,
    set_parent_death_signal: Callable[[], None],
) -> NoReturn:
    run_forked(request, lambda: _run_kernel(request["argv"]), close_fds=close_fds,
               parent_pid=parent_pid, set_parent_death_signal=set_parent_death_signal)


def run_forked(
    request: dict[str, Any],
    work: Callable[[], int],
    *,
    close_fds: Sequence[int],
    parent_pid: int,
    set_parent_death_signal: Callable[[], None],
) -> NoReturn:
    """What every forked child does (a kernel, a direct task, a setup template): detach
    from the zygote, enter the task's context, do ``work`` and end in ``os._exit`` with its
    code, whatever happens."""
    code = 1
    try:
        _detach(close_fds, parent_pid, set_parent_death_signal)
        _enter_task_context(request)
        code = work()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc(file=sys.__stderr__)
    finally:
        _exit(code)


def _detach(close_fds: Sequence[int], parent_pid: int, set_pdeathsig: Callable[[], None]) -> None:
    # Own session and process group: interrupts/kills aimed at the kernel's group reach its
    # subprocesses too (as with jupyter_client's spawn), and a Ctrl-C in the driver's
    # terminal does not.
    os.setsid()
    set_pdeathsig()
    if os.getppid() != parent_pid:  # the zygote died between fork() and prctl()
        os._exit(1)
    signal.set_wakeup_fd(-1)
    for name in _RESET_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def _enter_task_context(request: dict[str, Any]) -> None:
    env: dict[str, str] = request["env"]
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(env)
    _threads.reseed_after_fork()
    ipykernel_launcher = sys.modules.get("ipykernel_launcher")
    launcher_file = getattr(ipykernel_launcher, "__file__", None) or "ipykernel_launcher"
    sys.argv = [launcher_file, *request.get("argv", ())]


def _run_kernel(argv: list[str]) -> int:
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance()
    app.initialize(argv)
    _restore_thread_pools_before_first_cell(app.shell)
    app.start()
    return 0


def _restore_thread_pools_before_first_cell(shell: Any) -> None:
    # Restoring OpenBLAS's thread count starts its worker threads, which spin for ~0.1 s
    # before they sleep: ~50 ms of a core, paid by a spawned kernel when it imports numpy.
    # Done at kernel start it would halve the forked start-up speed; before the first
    # cell it overlaps the task's own work, and the first BLAS call sees the full pool.
    if not _threads.has_clamped_pools():
        return

    def restore(*_: Any) -> None:
        shell.events.unregister("pre_execute", restore)
        _threads.restore_thread_pools(os.environ)

    shell.events.register("pre_execute", restore)


def _exit(code: int) -> NoReturn:
    # Like a normal interpreter exit (atexit hooks of the task run: a graceful shutdown
    # request still flushes what the user registered), but without unwinding into the
    # zygote's frames.
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass
    os._exit(code)
