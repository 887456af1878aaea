"""Fresh, started, isolated kernels on demand, fast.

A task kernel costs ≈0.3 CPU-s to start from scratch; almost all of it is importing
ipykernel/IPython/debugpy and the notebook's own imports. :class:`KernelLauncher` pays
that once per driver in a fork server (``forkserver``) and forks a new kernel per task
(``mode="fork"``, ≈60-90 ms). When forking cannot give the same kernel the kernelspec
describes (another environment, a custom provisioner, no ``os.fork``) it starts the
kernelspec the ordinary way (``mode="spawn"``) and says why in ``fallback_reason``.

Either way the kernel uses IPC transport with a socket path unique to it (no TCP port
races between concurrent drivers) and comes with a client that is already connected and
has seen the kernel answer, so papermill/nbclient skip their own readiness wait.

``NBFLOW_KERNEL_MODE=auto|fork|spawn`` (or ``mode=``) overrides the choice.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.provisioning import LocalProvisioner

from nbflow.kernel._manager import (
    IPYKERNEL_MODULES,
    ForkProvisioner,
    KernelStartError,
    NbflowKernelManager,
    confirm_ready,
)
from nbflow.kernel._prestart import Prestarter
from nbflow.kernel._started import StartedKernel
from nbflow.kernel._zygote import Zygote, ZygoteUnavailable

__all__ = ["DEFAULT_PRELOAD", "KernelLauncher", "KernelStartError", "StartedKernel"]

# Imported by every task notebook; preloaded whenever they are fork-safe.
DEFAULT_PRELOAD = ("nbflow.kernel.runtime", "nbflow.kernel._direct_child", "cloudpickle", "fsspec")
# What nbclient passes when it starts a kernel itself: concurrent kernels must not share
# (and lock) one SQLite history file.
_HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"
_MODES = ("auto", "fork", "spawn")


class _CachedKernelSpecManager(KernelSpecManager):
    """Kernelspecs do not change during a run: read each kernel.json once."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache: dict[str, KernelSpec] = {}
        self._cache_lock = threading.Lock()

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        with self._cache_lock:
            if kernel_name not in self._cache:
                self._cache[kernel_name] = super().get_kernel_spec(kernel_name)
            return self._cache[kernel_name]


class KernelLauncher:
    """Hands out fresh, started, isolated kernels. One per driver process; thread-safe."""

    def __init__(
        self,
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        preload: Sequence[str] = (),
        prestart: int = 0,
        mode: str | None = None,
        start_timeout: float = 60,
    ) -> None:
        self.cwd = os.path.abspath(cwd) if cwd else None
        self.env = dict(env or {})
        self.preload = tuple(dict.fromkeys([*preload, *DEFAULT_PRELOAD]))
        self.mode = (mode or os.environ.get("NBFLOW_KERNEL_MODE") or "auto").lower()
        if self.mode not in _MODES:
            raise ValueError(f"kernel mode {self.mode!r}: expected one of {', '.join(_MODES)}")
        self.start_timeout = start_timeout
        self.rundir = tempfile.mkdtemp(prefix="nbflow-k-", dir=_short_tmpdir())
        self.log_path = os.path.join(self.rundir, "kernels.log")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (lives as long as the launcher)
        self._specs = _CachedKernelSpecManager()
        # One context each for all managers and clients: a context per kernel would be a
        # ZMQ I/O thread per kernel in the driver.
        self._zmq = zmq.Context()
        self._azmq = zmq.asyncio.Context()
        # Connect retries every 5 ms instead of 100: a client usually connects before
        # the kernel has bound its sockets.
        self._azmq.setsockopt(zmq.RECONNECT_IVL, 5)
        self._lock = threading.Lock()
        self._zygotes: dict[str, Zygote | ZygoteUnavailable] = {}
        self._zygote_locks: dict[str, threading.Lock] = {}
        self._live: set[StartedKernel] = set()
        self._templates: dict[tuple[int, tuple[str, ...]], SetupTemplate] = {}
        self._closed = False
        if self.mode != "spawn" and hasattr(os, "fork"):
            # Importing the kernel machinery takes a second or two: start now, in the
            # background, so the first task does not wait for all of it.
            threading.Thread(
                target=self._zygote_for, args=(sys.executable,), daemon=True,
                name="nbflow-zygote-start",
            ).start()
        # Finding a kernelspec costs ~0.3 s the first time (jupyter paths, ipykernel's
        # own spec) and papermill's import ~1 s of CPU: both overlap the fork server's
        # start instead of delaying the first task.
        threading.Thread(target=self._warm_up, daemon=True, name="nbflow-warm-up").start()
        self._prestarter = Prestarter(self, prestart) if prestart > 0 else None

    def _warm_up(self) -> None:
        import contextlib

        with contextlib.suppress(Exception):  # a missing spec is reported by start()
            self._specs.get_kernel_spec("python3")
        from nbflow.kernel.execute import import_papermill

        import_papermill()

    # -- public ------------------------------------------------------------------------

    def start(
        self, kernel_name: str = "python3", *, env: Mapping[str, str] | None = None
    ) -> StartedKernel:
        """A started kernel, ready for ``execute_notebook``. Blocking, thread-safe.

        ``env`` (optional) is layered over the launcher's environment for this kernel
        only; kernels started ahead (``prestart``) are used only when nothing differs.
        """
        if self._closed:
            raise RuntimeError("KernelLauncher is closed")
        cwd, full_env = self.cwd or os.getcwd(), self._environment(env)
        if self._prestarter is not None:
            kernel = self._prestarter.take(kernel_name, cwd, full_env)
            if kernel is not None:
                return kernel
        return self.launch(kernel_name, cwd, full_env)

    def start_direct(
        self, kernel_name: str, nb: Any, *, cwd: str | None = None,
        env: Mapping[str, str] | None = None, template: SetupTemplate | None = None,
    ) -> Any:
        """A forked child already running ``nb``'s cells (``nbflow.kernel.direct``), or
        ``None`` when this kernelspec needs a real kernel (then use ``start``). With a
        ready ``template`` the child is forked from it (``nb`` then has no setup cells)."""
        if self._closed:
            raise RuntimeError("KernelLauncher is closed")
        found = self._direct_zygote(kernel_name)
        if found is None:
            return None
        zygote, spec = found
        from nbflow.kernel.direct import DirectTask

        full_env = {**self._environment(env), **(spec.env or {})}
        tid = template.tid if template is not None and template.zygote is zygote else None
        if template is not None and tid is None:
            return None  # its fork server is gone: the caller replays the setup instead
        return DirectTask(zygote, nb, rundir=self.rundir,
                          cwd=cwd or self.cwd or os.getcwd(), env=full_env, template=tid)

    def setup_template(self, kernel_name: str, cells: Sequence[str], *,
                       cwd: str | None = None) -> SetupTemplate | None:
        """A template process that ran ``cells`` (a notebook's setup) once, for tasks to
        fork from (``nbflow.kernel._template``); made on the first call for these cells,
        shared by later ones. ``None`` when tasks of this kernel do not run direct; a
        template whose ``reason`` is set could not be made (tasks replay the setup)."""
        found = self._direct_zygote(kernel_name)
        if found is None:
            return None
        zygote, spec = found
        key = (zygote.pid, tuple(cells))
        with self._lock:
            template = self._templates.get(key)
            if template is None:
                template = self._templates[key] = SetupTemplate(zygote)
        with template.lock:
            if not template.done:
                template.make(cells, cwd=cwd or self.cwd or os.getcwd(),
                              env={**self._environment(None), **(spec.env or {})})
        return template

    def _direct_zygote(self, kernel_name: str) -> tuple[Zygote, KernelSpec] | None:
        if os.environ.get("NBFLOW_TASK_ENGINE", "direct").lower() != "direct":
            return None
        spec = self._specs.get_kernel_spec(kernel_name)
        python, _ = self._fork_python(spec)
        if python is None or len(spec.argv) != 5:  # extra kernel options need the kernel
            return None
        zygote, _ = self._usable_zygote(python)
        return None if zygote is None else (zygote, spec)

    def close(self) -> None:
        """Stop fork servers, kill any kernel still alive. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._prestarter is not None:
            self._prestarter.close()
        for kernel in list(self._live):
            kernel.shutdown()
        for lock in list(self._zygote_locks.values()):
            with lock:  # wait for a zygote still starting in the background
                pass
        with self._lock:  # a task thread drops a fork server it finds dead (closed here)
            zygotes = list(self._zygotes.values())
        for zygote in zygotes:
            if isinstance(zygote, Zygote):
                zygote.close()
        self._azmq.destroy(linger=0)
        self._zmq.destroy(linger=0)
        self._log.close()
        shutil.rmtree(self.rundir, ignore_errors=True)

    def __enter__(self) -> KernelLauncher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def preload_report(self) -> dict[str, Any]:
        """What each running fork server preloaded, and why it skipped the rest."""
        return {
            python: {"preloaded": z.preloaded, "skipped": z.skipped}
            if isinstance(z, Zygote) else {"unavailable": str(z)}
            for python, z in self._zygotes.items()
        }

    # -- starting ----------------------------------------------------------------------

    def launch(self, kernel_name: str, cwd: str, env: dict[str, str]) -> StartedKernel:
        """Start one kernel now (no prestart pool); used by ``start`` and the pool."""
        spec = self._specs.get_kernel_spec(kernel_name)
        python, reason = self._fork_python(spec)
        zygote: Zygote | None = None
        if python is not None:
            zygote, reason = self._usable_zygote(python)
        if zygote is not None:
            try:
                return self._start(kernel_name, spec, cwd, env, zygote, None)
            except KernelStartError as exc:
                if self.mode == "fork":
                    raise
                reason = f"a forked kernel failed to start ({exc}); see {self.log_path}"
        elif self.mode == "fork":
            raise KernelStartError(f"mode='fork' but kernel {kernel_name!r} cannot fork: {reason}")
        return self._start(kernel_name, spec, cwd, env, None, reason)

    def _start(
        self, kernel_name: str, spec: KernelSpec, cwd: str, env: dict[str, str],
        zygote: Zygote | None, reason: str | None,
    ) -> StartedKernel:
        began = time.perf_counter()
        kernel_id = uuid.uuid4().hex
        km = NbflowKernelManager(
            kernel_name=kernel_name, kernel_spec_manager=self._specs, context=self._zmq,
            transport="ipc", ip=os.path.join(self.rundir, kernel_id[:12]),
            connection_file=os.path.join(self.rundir, f"{kernel_id[:12]}.json"),
        )
        km.kernel_id = kernel_id
        km.client_zmq_context = self._azmq
        launch: dict[str, Any] = {"cwd": cwd, "env": env}
        if zygote is not None:
            provisioner = ForkProvisioner(kernel_id=kernel_id, kernel_spec=spec, parent=km)
            provisioner.zygote = zygote
            km.provisioner = provisioner
        else:
            launch.update(stdout=self._log, stderr=self._log)
        if _ipykernel_argv(spec.argv):
            launch["extra_arguments"] = [_HISTORY_IN_MEMORY]
        kernel = StartedKernel(
            km=km, pid=0, mode="fork" if zygote is not None else "spawn",
            fallback_reason=reason, kernel_name=kernel_name, cwd=cwd,
            on_shutdown=self._live.discard,
        )
        try:
            km.start_kernel(**launch)
            assert isinstance(km.provisioner, LocalProvisioner)  # ForkProvisioner is one
            kernel.pid = km.provisioner.pid or 0
            self._live.add(kernel)
            km.ready_client = confirm_ready(km, self.start_timeout)
        except BaseException:
            kernel.shutdown()
            raise
        kernel.startup_seconds = time.perf_counter() - began
        if self._closed:  # close() ran meanwhile and cannot have seen this kernel
            kernel.shutdown()
            raise RuntimeError("KernelLauncher is closed")
        return kernel

    def _environment(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        return {**os.environ, **self.env, **(extra or {})}

    # -- fork or spawn -----------------------------------------------------------------

    def _fork_python(self, spec: KernelSpec) -> tuple[str | None, str | None]:
        """The interpreter a zygote must run to produce this kernelspec, or why none can."""
        if self.mode == "spawn":
            return None, "spawn mode was requested (mode='spawn' or NBFLOW_KERNEL_MODE)"
        if not hasattr(os, "fork") or sys.platform == "win32":
            return None, f"os.fork is not available on {sys.platform}"
        provisioner = spec.metadata.get("kernel_provisioner")
        if provisioner:
            return None, f"the kernelspec uses its own provisioner {provisioner!r}"
        if not _ipykernel_argv(spec.argv) or (spec.language or "").lower() != "python":
            return None, f"the kernelspec does not run ipykernel: {spec.argv}"
        exe = spec.argv[0]
        major, minor = sys.version_info[:2]
        if exe in ("python", f"python{major}", f"python{major}.{minor}"):
            return sys.executable, None  # what jupyter_client substitutes too
        found = exe if os.path.isabs(exe) else shutil.which(exe)
        if found is None:
            return None, f"the kernelspec's interpreter {exe!r} is not on PATH"
        same = os.path.realpath(found) == os.path.realpath(sys.executable)
        return (sys.executable if same else found), None

    def _usable_zygote(self, python: str) -> tuple[Zygote | None, str | None]:
        zygote = self._zygote_for(python)
        if isinstance(zygote, Zygote) and not zygote.alive():
            with self._lock:
                self._zygotes.pop(python, None)  # it died: one fresh attempt
            zygote = self._zygote_for(python)
        if isinstance(zygote, Zygote):
            return zygote, None
        return None, f"no fork server for {python}: {zygote}"

    def _zygote_for(self, python: str) -> Zygote | ZygoteUnavailable:
        with self._lock:
            lock = self._zygote_locks.setdefault(python, threading.Lock())
        with lock:
            found = self._zygotes.get(python)
            if found is None and not self._closed:
                try:
                    found = Zygote(
                        python, preload=self.preload, cwd=self.cwd or os.getcwd(),
                        env=self._environment(None), log=self._log,
                    )
                except ZygoteUnavailable as exc:
                    found = exc
                self._zygotes[python] = found
            return found if found is not None else ZygoteUnavailable("the launcher is closed")


class SetupTemplate:
    """The setup cells run once in a process tasks fork from, or why that was refused."""

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote
        self.lock = threading.Lock()
        self.done = False
        self.tid: str | None = None
        self.reason: str | None = None
        self.cells: list[dict[str, Any]] = []  # per setup cell: outputs, execution_count
        self.index: int | None = None  # the setup cell that made it unsafe

    def make(self, cells: Sequence[str], *, cwd: str, env: dict[str, str]) -> None:
        try:
            report = self.zygote.template(cells=cells, env=env, cwd=cwd, timeout=None)
        except ZygoteUnavailable as exc:
            report = {"status": "failed", "reason": str(exc), "cells": []}
        self.done = True
        self.cells = report.get("cells", [])
        if report["status"] == "ready":
            self.tid = report["tid"]
        else:
            self.reason = report.get("reason") or report["status"]
            self.index = report.get("index")


def _ipykernel_argv(argv: Sequence[str]) -> bool:
    return (
        len(argv) >= 3 and argv[1] == "-m" and argv[2] in IPYKERNEL_MODULES
        and "{connection_file}" in argv
    )


def _short_tmpdir() -> str:
    # AF_UNIX socket paths are limited to ~107 bytes; TMPDIR on macOS is already ~50.
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) <= 40 else "/tmp"
