"""Kernels started ahead of demand, so ``KernelLauncher.start`` can return at once."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from nbflow.kernel._started import StartedKernel

if TYPE_CHECKING:
    from nbflow.kernel.launcher import KernelLauncher

log = logging.getLogger(__name__)

_Key = tuple[str, str, tuple[tuple[str, str], ...]]


def _key(kernel_name: str, cwd: str, env: dict[str, str]) -> _Key:
    return kernel_name, cwd, tuple(sorted(env.items()))


class Prestarter:
    """Keeps at most ``size`` idle kernels, of the kernel names asked for so far.

    A kernel is only handed out if it was started with exactly the cwd and environment
    the caller would get now; one started before the driver changed ``os.environ`` is
    stale, killed and replaced.
    """

    def __init__(self, launcher: KernelLauncher, size: int) -> None:
        self._launcher = launcher
        self._size = size
        self._idle: list[tuple[_Key, StartedKernel]] = []
        self._wanted: dict[str, None] = {"python3": None}  # ordered set
        self._turn = 0
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._fill, name="nbflow-prestart", daemon=True)
        self._thread.start()

    def take(self, kernel_name: str, cwd: str, env: dict[str, str]) -> StartedKernel | None:
        key = _key(kernel_name, cwd, env)
        stale: list[StartedKernel] = []
        found: StartedKernel | None = None
        with self._cond:
            self._wanted.setdefault(kernel_name, None)
            keep: list[tuple[_Key, StartedKernel]] = []
            for idle_key, kernel in self._idle:
                if idle_key[0] == kernel_name and (idle_key != key or not kernel.is_alive):
                    stale.append(kernel)
                elif found is None and idle_key == key:
                    found = kernel
                else:
                    keep.append((idle_key, kernel))
            self._idle = keep
            self._cond.notify_all()
        for kernel in stale:
            kernel.shutdown()
        return found

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        self._thread.join(timeout=30)
        for _, kernel in idle:
            kernel.shutdown()

    def _next_name(self) -> str | None:
        names = list(self._wanted)
        if not names:
            return None
        self._turn += 1
        return names[self._turn % len(names)]

    def _fill(self) -> None:
        launcher = self._launcher
        while True:
            with self._cond:
                while not self._closed and (len(self._idle) >= self._size or not self._wanted):
                    self._cond.wait()
                if self._closed:
                    return
                name = self._next_name()
            if name is None:
                continue
            cwd, env = launcher.cwd or _cwd(), launcher._environment(None)
            try:
                kernel = launcher.launch(name, cwd, env)
            except Exception as exc:  # e.g. no such kernelspec: stop trying that name
                if self._closed:
                    return
                log.warning("prestarting a %r kernel failed: %s", name, exc)
                with self._cond:
                    self._wanted.pop(name, None)
                continue
            with self._cond:
                if not self._closed:
                    self._idle.append((_key(name, cwd, env), kernel))
                    continue
            kernel.shutdown()
            return


def _cwd() -> str:
    import os

    return os.getcwd()
