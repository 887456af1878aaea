"""The zygote: a pre-imported Python that forks ready-to-initialise ipykernels.

Started by :class:`nbflow.kernel.launcher.KernelLauncher` as
``python -m nbflow.kernel.forkserver --fd N [--preload MOD]... [--skip MOD=REASON]...``
with one end of a socketpair on fd N. It imports the kernel machinery once (ipykernel,
IPython, debugpy, ... ≈0.5 s that every spawned kernel pays again) plus the requested
``preload`` modules that stay fork-safe, then serves requests (see ``_protocol``):

* ``fork {rid, argv, env, cwd}`` -> ``forked {rid, pid}``: the child becomes an ordinary
  IPKernelApp (``_child``); its exit is reported later as ``exit {pid, code}``.
* ``signal {pid, sig}``: sent to the child's process group. Going through the parent
  makes signalling race-free: a pid is never reused while its parent has not reaped it.
* ``stop`` or EOF (the launcher exited, even by SIGKILL): kill every child and exit.

The zygote stays single-threaded for its whole life: ``fork()`` copies only the calling
thread, so any other thread would be missing, with whatever locks it held, in every kernel.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbflow.kernel import _threads
from nbflow.kernel._protocol import PROTOCOL_VERSION, FrameReader, send_frame

REQUIRED = "ipykernel.kernelapp"
# What IPKernelApp.initialize would import in every child; debugpy alone is ~0.2 s there.
MACHINERY = (
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "ipykernel_launcher",
    "IPython.core.completerlib",
    "tornado.platform.asyncio",
    "faulthandler",
)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    skipped = dict(item.split("=", 1) for item in args.skip)
    original_env = dict(os.environ)
    os.environ.update(_threads.import_clamps(original_env))
    started = time.perf_counter()
    try:
        importlib.import_module(REQUIRED)
    except Exception as exc:
        _fail(sock, f"cannot import {REQUIRED} with {sys.executable}: {exc!r}")
    if _threads.native_thread_count() > 1:
        _fail(sock, f"importing {REQUIRED} started threads: forking it is unsafe")
    preloaded = _preload(sock, [*MACHINERY, *args.preload], skipped, original_env, args)
    _prepare_runtime(skipped)
    _threads.remember_clamped_pools()
    _forget_startup_cwd()
    # Everything imported so far is shared with every child. Frozen, the children's
    # garbage collector never walks it: no full collections over a million preloaded
    # objects during kernel start, and no copy-on-write of the pages they live on.
    gc.collect()
    gc.freeze()
    Zygote(sock).serve(
        preloaded=preloaded, skipped=skipped, seconds=time.perf_counter() - started
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m nbflow.kernel.forkserver")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--preload", action="append", default=[])
    parser.add_argument("--skip", action="append", default=[])
    return parser.parse_args(argv)


def _preload(
    sock: socket.socket,
    modules: list[str],
    skipped: dict[str, str],
    original_env: dict[str, str],
    args: argparse.Namespace,
) -> list[str]:
    loaded: list[str] = []
    for name in dict.fromkeys(modules):
        if name in skipped:
            continue
        try:
            importlib.import_module(name)
        except BaseException as exc:  # a module's import may even sys.exit()
            skipped[name] = f"import failed: {type(exc).__name__}: {exc}"
            continue
        if _threads.native_thread_count() > 1:
            # A thread cannot be un-started: begin again without this module.
            reason = "starts threads at import (unsafe to fork)"
            _reexec(sock, args, {**skipped, name: reason}, original_env)
        loaded.append(name)
    return loaded


def _prepare_runtime(skipped: dict[str, str]) -> None:
    """Let the task runtime do once, here, what every task would repeat (see
    ``nbflow.kernel.runtime.prepare_fork``)."""
    runtime = sys.modules.get("nbflow.kernel.runtime")
    if runtime is None:
        return
    try:
        runtime.prepare_fork()
    except Exception as exc:  # each task then does it for itself, and reports any error
        skipped["nbflow.kernel.runtime.prepare_fork"] = f"{type(exc).__name__}: {exc}"


def _reexec(
    sock: socket.socket, args: argparse.Namespace, skipped: dict[str, str], env: dict[str, str]
) -> None:
    os.set_inheritable(sock.fileno(), True)
    argv = [sys.executable, "-m", "nbflow.kernel.forkserver", "--fd", str(args.fd)]
    for name in args.preload:
        argv += ["--preload", name]
    for name, reason in skipped.items():
        argv += ["--skip", f"{name}={reason}"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def _forget_startup_cwd() -> None:
    # `python -m` put the zygote's cwd first on sys.path (it was needed to preload local
    # modules). A kernel's own "" entry is added by IPython's init_path, as it is for
    # `python -m ipykernel_launcher`, which removes the startup cwd the same way.
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]


def _fail(sock: socket.socket, reason: str) -> None:
    send_frame(sock, {"op": "failed", "reason": reason})
    sys.exit(1)


def _prctl(option: int, value: int) -> Callable[[], None]:
    if not sys.platform.startswith("linux"):
        return lambda: None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(option, value, 0, 0, 0)


class Zygote:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.pid = os.getpid()  # read before fork(): in the child getpid() is the child
        self.children: set[int] = set()
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        self.set_pdeathsig = _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        # Templates (``_template``): id -> their process, their end of our socketpair and
        # the tasks they forked (to report as killed should the template die).
        self.templates: dict[str, _TemplateLink] = {}

    def serve(self, announce: bool = True, **ready: Any) -> None:
        # Orphans of a kernel (its own subprocesses) are re-parented here and reaped:
        # the container's PID 1 may not reap at all.
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)()
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        # The launcher stops us; a terminal Ctrl-C or SIGTERM for the session must not
        # leave kernels behind, so both end in the same cleanup.
        signal.signal(signal.SIGTERM, lambda signum, frame: self.stop())
        reader = FrameReader(self.sock)
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        if announce:
            send_frame(
                self.sock,
                {"op": "ready", "protocol": PROTOCOL_VERSION, "pid": self.pid,
                 "python": sys.executable, **ready},
            )
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.sock:
                    messages = reader.read_available()
                    if messages is None:
                        self.stop()
                    for message in messages or ():
                        self.handle(message)
                elif isinstance(key.data, _TemplateLink):
                    self.relay(key.data)
                else:
                    self.reap()

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "run" and message.get("template") is not None:
            self.to_template(message)
        elif op in ("fork", "run"):
            self.fork(message)
        elif op == "template":
            self.fork_template(message)
        elif op == "signal":
            self.signal(message["pid"], message["sig"])
        elif op == "stop":
            self.stop()

    # -- templates -------------------------------------------------------------------

    def fork_template(self, request: dict[str, Any]) -> None:
        """Fork a template that runs the setup cells once; it answers through us."""
        from nbflow.kernel._direct_child import prepare_shell

        prepare_shell()
        ours, theirs = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            ours.close()
            theirs.close()
            send_frame(self.sock, {"op": "template", "rid": request["rid"], "status": "failed",
                                   "reason": f"fork failed: {exc!r}", "cells": []})
            return
        if pid == 0:
            from nbflow.kernel._template import become_template

            fds = [self.sock.fileno(), self.wake_r, self.wake_w, self.selector_fd(),
                   ours.fileno(), *(t.sock.fileno() for t in self.templates.values())]
            become_template(request, theirs, close_fds=[fd for fd in fds if fd >= 0],
                            parent_pid=self.pid, set_parent_death_signal=self.set_pdeathsig)
        theirs.close()
        self.children.add(pid)
        link = _TemplateLink(request["tid"], pid, ours)
        self.templates[link.tid] = link
        self.selector.register(ours, selectors.EVENT_READ, link)

    def to_template(self, message: dict[str, Any]) -> None:
        link = self.templates.get(message["template"])
        try:
            if link is None:
                raise OSError("the template has exited")
            send_frame(link.sock, {**message, "template": None})  # for it: a plain run
        except OSError as exc:
            send_frame(self.sock, {"op": "error", "rid": message["rid"],
                                   "reason": f"template {message['template']}: {exc}"})

    def relay(self, link: _TemplateLink) -> None:
        """Pass a template's messages on to the launcher, noting the tasks it forks."""
        messages = link.reader.read_available()
        for message in messages or ():
            if message["op"] == "forked":
                link.tasks.add(message["pid"])
            elif message["op"] == "exit":
                link.tasks.discard(message["pid"])
            send_frame(self.sock, message)
        if messages is None:  # the template is gone, and with it its tasks (PDEATHSIG)
            self.selector.unregister(link.sock)
            link.sock.close()
            self.templates.pop(link.tid, None)
            for pid in sorted(link.tasks):
                send_frame(self.sock, {"op": "exit", "pid": pid, "code": -signal.SIGKILL})

    def fork(self, request: dict[str, Any]) -> None:
        direct = request["op"] == "run"
        if direct:
            # The task shell is made once, here, so that every direct child has it ready.
            from nbflow.kernel._direct_child import prepare_shell

            prepare_shell()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            send_frame(self.sock, {"op": "error", "rid": request["rid"], "reason": repr(exc)})
            return
        if pid == 0:
            from nbflow.kernel._child import become_kernel
            from nbflow.kernel._direct_child import forget_shell, run_cells

            fds = [self.sock.fileno(), self.wake_r, self.wake_w, self.selector_fd()]
            if not direct:
                forget_shell()
            (run_cells if direct else become_kernel)(
                request,
                close_fds=[fd for fd in fds if fd >= 0],
                parent_pid=self.pid,
                set_parent_death_signal=self.set_pdeathsig,
            )
        self.children.add(pid)
        send_frame(self.sock, {"op": "forked", "rid": request["rid"], "pid": pid})

    def selector_fd(self) -> int:
        fileno = getattr(self.selector, "fileno", None)
        return fileno() if fileno is not None else -1

    def signal(self, pid: int, signum: int) -> None:
        for link in self.templates.values():
            if pid in link.tasks:  # the template is its parent: it signals race-free
                with contextlib.suppress(OSError):
                    send_frame(link.sock, {"op": "signal", "pid": pid, "sig": signum})
                return
        if pid not in self.children:  # already reaped: the pid may belong to anyone now
            return
        try:
            os.killpg(pid, signum)
        except OSError:  # the child has not reached setsid() yet
            try:
                os.kill(pid, signum)
            except OSError:
                pass

    def reap(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                self.children.discard(pid)
                code = os.waitstatus_to_exitcode(status)
                try:
                    send_frame(self.sock, {"op": "exit", "pid": pid, "code": code})
                except OSError:
                    pass

    def stop(self) -> None:
        for pid in list(self.children):
            self.signal(pid, signal.SIGKILL)
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        os._exit(0)


class _TemplateLink:
    def __init__(self, tid: str, pid: int, sock: socket.socket) -> None:
        self.tid = tid
        self.pid = pid
        self.sock = sock
        self.reader = FrameReader(sock)
        self.tasks: set[int] = set()


if __name__ == "__main__":
    main()
