"""A started kernel as handed to the scheduler, and its immediate shutdown."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

from nbflow.kernel._manager import ForkProvisioner, NbflowKernelManager

_REAP_TIMEOUT = 10.0


class StartedKernel:
    """One fresh kernel process and the ``KernelManager`` that owns it.

    ``km.has_kernel`` is true and ``km.client()`` returns a connected, ready client, so
    ``papermill.execute_notebook(km=kernel.km)`` runs at once. ``mode`` is ``"fork"`` or
    ``"spawn"``; ``fallback_reason`` says why a kernel was spawned rather than forked.
    """

    def __init__(
        self,
        *,
        km: NbflowKernelManager,
        pid: int,
        mode: str,
        fallback_reason: str | None,
        kernel_name: str,
        cwd: str,
        on_shutdown: Callable[[StartedKernel], Any] | None = None,
    ) -> None:
        self.km = km
        self.pid = pid
        self.mode = mode
        self.fallback_reason = fallback_reason
        self.kernel_name = kernel_name
        self.cwd = cwd
        self.startup_seconds = 0.0
        self._on_shutdown = on_shutdown
        self._lock = threading.Lock()
        self._shut = False

    def __repr__(self) -> str:
        state = "stopped" if self._shut else "running"
        return f"<StartedKernel {self.kernel_name} pid={self.pid} mode={self.mode} {state}>"

    @property
    def is_alive(self) -> bool:
        from nbflow.kernel._manager import exit_code

        return not self._shut and exit_code(self.km) is None

    def shutdown(self) -> None:
        """Kill the kernel (and its process group) now, reap it, remove its files."""
        with self._lock:
            if self._shut:
                return
            self._shut = True
        km = self.km
        client = km.ready_client
        km.ready_client = None
        if client is not None:
            # Close our sockets first: a client left connected to a dead kernel keeps
            # trying to reconnect.
            client.stop_channels()
        try:
            _kill_and_reap(km)
        finally:
            km.cleanup_resources()
            if self._on_shutdown is not None:
                self._on_shutdown(self)


def _kill_and_reap(km: NbflowKernelManager) -> None:
    provisioner = km.provisioner
    if isinstance(provisioner, ForkProvisioner):
        forked = provisioner.forked
        if forked is not None:
            forked.send_signal(signal.SIGKILL)  # the zygote reaps it and reports the exit
            forked.wait(_REAP_TIMEOUT)
            provisioner.forked = None
        return
    if not isinstance(provisioner, LocalProvisioner) or provisioner.process is None:
        return
    process = provisioner.process
    # jupyter_client starts kernels in their own session: the group is the kernel and
    # whatever it spawned.
    try:
        if not hasattr(os, "killpg"):  # no process groups (Windows): the kernel alone
            raise OSError("no process groups")
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        try:
            process.kill()
        except OSError:
            pass
    process.wait(_REAP_TIMEOUT)
    provisioner.process = None
