"""Launcher side of a fork server: start it, ask it for kernels, follow their exits."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from nbflow.kernel._protocol import PROTOCOL_VERSION, FrameReader, send_frame


class ZygoteUnavailable(RuntimeError):
    """The fork server could not be started; the message says why (shown to the user)."""


class ForkedProcess:
    """A kernel process forked by a zygote (not our child: the zygote reaps it)."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()

    def poll(self) -> int | None:
        return self.returncode if self._exited.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        self._exited.wait(timeout)
        return self.poll()

    def send_signal(self, signum: int) -> None:
        if not self._exited.is_set():
            self.zygote.signal(self.pid, signum)

    def _set_exited(self, code: int) -> None:
        self.returncode = code
        self._exited.set()


class Zygote:
    """One fork server process: ``python -m nbflow.kernel.forkserver``. Thread-safe."""

    def __init__(
        self,
        python: str,
        *,
        preload: Sequence[str],
        cwd: str,
        env: Mapping[str, str],
        log: IO[bytes],
        timeout: float = 120,
    ) -> None:
        self.python = python
        self._send_lock = threading.Lock()
        self._pending: dict[int, Future[Any]] = {}
        self._processes: dict[int, ForkedProcess] = {}
        self._state_lock = threading.Lock()
        self._ids = itertools.count()
        self._closed = False
        ours, theirs = socket.socketpair()
        argv = [python, "-m", "nbflow.kernel.forkserver", "--fd", str(theirs.fileno())]
        for name in preload:
            argv += ["--preload", name]
        try:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=_with_nbflow_on_path(python, env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, pass_fds=[theirs.fileno()], start_new_session=True,
            )
        except OSError as exc:
            raise ZygoteUnavailable(f"cannot run {python}: {exc}") from exc
        finally:
            theirs.close()
        self._sock = ours
        self._reader = FrameReader(ours)
        self.info = self._handshake(timeout)
        self.pid: int = self.info["pid"]
        self.preloaded: list[str] = self.info["preloaded"]
        self.skipped: dict[str, str] = self.info["skipped"]
        self._thread = threading.Thread(target=self._read_loop, name="nbflow-zygote", daemon=True)
        self._thread.start()

    def _handshake(self, timeout: float) -> dict[str, Any]:
        self._sock.settimeout(timeout)
        try:
            while True:
                messages = self._reader.read_available()
                if messages is None:
                    code = self.process.wait()
                    raise ZygoteUnavailable(f"the fork server exited with code {code} at start")
                if messages:
                    break
        except TimeoutError as exc:
            self._kill()
            raise ZygoteUnavailable(f"the fork server did not start within {timeout:g} s") from exc
        finally:
            self._sock.settimeout(None)
        first = messages[0]
        if first["op"] != "ready":
            self.process.wait()
            raise ZygoteUnavailable(first.get("reason", repr(first)))
        if first.get("protocol") != PROTOCOL_VERSION:
            self._kill()
            raise ZygoteUnavailable(
                f"{self.python} runs an nbflow fork server of another version "
                f"(protocol {first.get('protocol')}, expected {PROTOCOL_VERSION})"
            )
        return first

    def fork(self, *, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> ForkedProcess:
        """Fork one kernel child; it initialises and binds its sockets on its own."""
        rid = next(self._ids)
        reply: Future[ForkedProcess] = Future()
        with self._state_lock:
            if self._closed:
                raise ZygoteUnavailable("the fork server has stopped")
            self._pending[rid] = reply
        self._send({"op": "fork", "rid": rid, "argv": list(argv), "env": dict(env), "cwd": cwd})
        return reply.result(timeout=60)

    def run(
        self, *, cells: Sequence[str | None], fifo: str, env: Mapping[str, str], cwd: str,
        template: str | None = None,
    ) -> ForkedProcess:
        """Fork one child that runs ``cells`` itself and writes their outputs to ``fifo``;
        forked from ``template`` (see :meth:`template`) when given."""
        rid = next(self._ids)
        reply: Future[ForkedProcess] = Future()
        with self._state_lock:
            if self._closed:
                raise ZygoteUnavailable("the fork server has stopped")
            self._pending[rid] = reply
        self._send({"op": "run", "rid": rid, "cells": list(cells), "fifo": fifo,
                    "env": dict(env), "cwd": cwd, "template": template})
        return reply.result(timeout=60)

    def template(
        self, *, cells: Sequence[str], env: Mapping[str, str], cwd: str, timeout: float | None
    ) -> dict[str, Any]:
        """Fork a template that runs ``cells`` (a notebook's setup) once, to fork tasks from.

        Returns its report: ``status`` ``ready`` (then ``tid`` names it for :meth:`run`),
        ``failed`` or ``unsafe`` (with a ``reason``), and each cell's ``outputs``."""
        rid = next(self._ids)
        tid = f"t{rid}"
        reply: Future[dict[str, Any]] = Future()
        with self._state_lock:
            if self._closed:
                raise ZygoteUnavailable("the fork server has stopped")
            self._pending[rid] = reply
        self._send({"op": "template", "rid": rid, "tid": tid, "cells": list(cells),
                    "env": dict(env), "cwd": cwd})
        try:
            report = reply.result(timeout=timeout)
        except TimeoutError:
            with self._state_lock:
                self._pending.pop(rid, None)
            return {"status": "failed", "cells": [],
                    "reason": f"the setup cells did not finish within {timeout:g} s"}
        return {**report, "tid": tid}

    def signal(self, pid: int, signum: int) -> None:
        try:
            self._send({"op": "signal", "pid": pid, "sig": int(signum)})
        except OSError:
            pass  # the zygote is gone, and with it (PR_SET_PDEATHSIG) its children

    def alive(self) -> bool:
        return not self._closed and self.process.poll() is None

    def close(self) -> None:
        """Stop the zygote; it kills and reaps every kernel it forked."""
        with self._state_lock:
            already, self._closed = self._closed, True
        if not already:
            try:
                self._send({"op": "stop"})
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
        self._thread.join(timeout=5)
        self._sock.close()

    def _send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            send_frame(self._sock, message)

    def _read_loop(self) -> None:
        try:
            while (messages := self._reader.read_available()) is not None:
                for message in messages:
                    self._dispatch(message)
        except OSError:
            pass
        self._on_zygote_exit()

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "forked":
            # Registered here, before the requester wakes: the zygote reports an exit
            # only after its "forked" reply, so an exit never finds an unknown pid.
            process = self._processes[message["pid"]] = ForkedProcess(self, message["pid"])
            self._pending.pop(message["rid"]).set_result(process)
        elif op == "template":
            waiting = self._pending.pop(message["rid"], None)
            if waiting is not None:  # else it timed out and the run replays its setup
                waiting.set_result(message)
        elif op == "error":
            self._pending.pop(message["rid"]).set_exception(
                ZygoteUnavailable(f"fork failed: {message['reason']}")
            )
        elif op == "exit":
            if message["pid"] in self._processes:
                self._processes.pop(message["pid"])._set_exited(message["code"])

    def _on_zygote_exit(self) -> None:
        with self._state_lock:
            self._closed = True
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(ZygoteUnavailable("the fork server exited"))
        # Its children got SIGKILL from the kernel (PR_SET_PDEATHSIG) or from its cleanup.
        for process in list(self._processes.values()):
            process._set_exited(-signal.SIGKILL)
        self._processes.clear()

    def _kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass
        self.process.wait()


def _with_nbflow_on_path(python: str, env: Mapping[str, str]) -> dict[str, str]:
    """Let a same-interpreter zygote import this nbflow even when it is not installed."""
    env = dict(env)
    if os.path.realpath(python) != os.path.realpath(sys.executable):
        return env
    root = str(Path(__file__).resolve().parents[2])
    installed = Path(root).name in ("site-packages", "dist-packages")
    if not installed:
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in parts:
            env["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return env

