"""jupyter_client glue: a KernelManager that owns a forked pid, and an already-ready client.

nbclient (under papermill) only ever talks to a ``KernelManager``: ``has_kernel``,
``client()``, ``interrupt_kernel()``, ``is_alive()``. Everything about *how* the process
exists lives in the manager's provisioner, so a forked kernel is a ``LocalProvisioner``
whose process is a :class:`~nbflow.kernel._zygote.ForkedProcess` instead of a ``Popen``.
"""

from __future__ import annotations

import asyncio
import signal
import time
from concurrent.futures import Future as CFuture
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.manager import KernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import run_sync

from nbflow.kernel._zygote import ForkedProcess, Zygote

# Modules that make a kernelspec argv "this ipykernel": `python -m <one of these> -f {cf}`.
IPYKERNEL_MODULES = ("ipykernel_launcher", "ipykernel")


class KernelStartError(RuntimeError):
    """A kernel process was launched but never answered, or died while starting."""


class ForkProvisioner(LocalProvisioner):
    """Launches by asking a zygote to fork; signals and exits go through the zygote."""

    zygote: Zygote | None = None
    forked: ForkedProcess | None = None

    @property
    def has_process(self) -> bool:
        return self.forked is not None

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        assert self.zygote is not None
        # cmd is the kernelspec argv, formatted: [python, -m, ipykernel_launcher, -f, cf, ...].
        # The child is already that python with ipykernel imported; it takes the rest.
        self.cwd = kwargs.get("cwd") or "."
        self.forked = self.zygote.fork(argv=cmd[3:], env=kwargs["env"], cwd=str(self.cwd))
        self.pid = self.pgid = self.forked.pid
        return self.connection_info

    async def poll(self) -> int | None:
        return self.forked.poll() if self.forked is not None else 0

    async def wait(self) -> int | None:
        if self.forked is None:
            return 0
        while self.forked.poll() is None:
            await asyncio.sleep(0.005)
        code, self.forked = self.forked.returncode, None
        return code

    async def send_signal(self, signum: int) -> None:
        if self.forked is not None:
            self.forked.send_signal(signum)

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)


class ReadyKernelClient(AsyncKernelClient):
    """An async client whose channels are connected and whose kernel already answered.

    nbclient calls ``start_channels()`` then ``wait_for_ready()``; the latter always ends
    with a 0.2 s IOPub flush. Readiness was proven at start (``confirm_ready``), so both
    are no-ops here. The client is async because nbclient's cell timeout only works with
    an async IOPub channel (a blocking ``get_msg(timeout=None)`` would never return).
    """

    _nbflow_ready = False

    def start_channels(self, *args: Any, **kwargs: Any) -> None:
        if not self._nbflow_ready:
            super().start_channels(*args, **kwargs)

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        if not self._nbflow_ready:
            await super()._async_wait_for_ready(timeout=timeout)

    wait_for_ready = _async_wait_for_ready

    def stop_channels(self) -> None:
        self._nbflow_ready = False
        super().stop_channels()


class NbflowKernelManager(KernelManager):
    """A KernelManager whose ``client()`` hands out the client readied at start."""

    ready_client: ReadyKernelClient | None = None
    client_zmq_context: zmq.Context[Any] | None = None

    async def _async_start_kernel(self, **kw: Any) -> None:
        # The base class wraps this in `in_pending_state`, which ends with
        # `await asyncio.sleep(0.01)` "so tests can capture the state": 10 ms per task.
        self._attempted_start = True
        ready: CFuture[None] = CFuture()
        self._ready = ready
        try:
            kernel_cmd, kw = await self._async_pre_start_kernel(**kw)
            await self._async_launch_kernel(kernel_cmd, **kw)
            await self._async_post_start_kernel(**kw)
        except Exception as exc:
            ready.set_exception(exc)
            raise
        ready.set_result(None)

    start_kernel = run_sync(_async_start_kernel)

    # Deliberately async where the base class says blocking: see ReadyKernelClient.
    def client(self, **kwargs: Any) -> AsyncKernelClient:  # type: ignore[override]
        ready = self.ready_client
        if ready is not None and ready._nbflow_ready and not kwargs:
            return ready
        return self.new_client(**kwargs)

    def new_client(self, **kwargs: Any) -> ReadyKernelClient:
        kw: dict[str, Any] = dict(self.get_connection_info(session=True))
        kw.update(connection_file=self.connection_file, parent=self)
        if self.client_zmq_context is not None:
            kw["context"] = self.client_zmq_context
        kw.update(kwargs)
        return ReadyKernelClient(**kw)


def confirm_ready(km: NbflowKernelManager, timeout: float) -> ReadyKernelClient:
    """Connect a client and wait until the kernel answers on shell *and* IOPub.

    A shell reply alone is not enough: IOPub is a PUB/SUB pair and everything published
    before our subscription arrives is lost. ipykernel 7 greets each new subscriber with
    ``iopub_welcome`` (JEP 65); older or other kernels are poked with kernel_info
    requests until one of their status messages arrives. Uses blocking shadows of the async sockets, so the
    client is not tied to any event loop when it is handed out.
    """
    client = km.new_client()
    for channel in (client.shell_channel, client.iopub_channel, client.stdin_channel,
                    client.control_channel):
        channel.start()
    shell: zmq.Socket[bytes] = zmq.Socket.shadow(client.shell_channel.socket.underlying)
    iopub: zmq.Socket[bytes] = zmq.Socket.shadow(client.iopub_channel.socket.underlying)
    poller = zmq.Poller()
    poller.register(shell, zmq.POLLIN)
    poller.register(iopub, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    replied = subscribed = False
    last_request = time.monotonic()
    client.session.send(shell, "kernel_info_request")
    while not (replied and subscribed):
        now = time.monotonic()
        if now > deadline:
            client.stop_channels()
            raise KernelStartError(f"the kernel did not answer within {timeout:g} s")
        for sock, _ in poller.poll(timeout=20):
            _, msg = client.session.recv(sock, mode=zmq.NOBLOCK)
            if msg is None:
                continue
            if sock is shell and msg["msg_type"] == "kernel_info_reply":
                replied = True
            elif sock is iopub:
                subscribed = True
        if not replied or not subscribed:
            code = exit_code(km)
            if code is not None:
                client.stop_channels()
                raise KernelStartError(f"the kernel exited with code {code} while starting")
            if replied and time.monotonic() - last_request > 0.05:
                client.session.send(shell, "kernel_info_request")
                last_request = time.monotonic()
    client._nbflow_ready = True
    return client


def exit_code(km: KernelManager) -> int | None:
    """The kernel process's exit code, or ``None`` while it runs (no event loop needed)."""
    provisioner = km.provisioner
    if isinstance(provisioner, ForkProvisioner):
        return provisioner.forked.poll() if provisioner.forked is not None else 0
    process = getattr(provisioner, "process", None)
    return process.poll() if process is not None else 0


def run_silently(client: AsyncKernelClient, code: str, timeout: float) -> None:
    """Execute ``code`` without output or history, outside any event loop."""
    shell: zmq.Socket[bytes] = zmq.Socket.shadow(client.shell_channel.socket.underlying)
    content = {"code": code, "silent": True, "store_history": False,
               "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}
    request = client.session.send(shell, "execute_request", content)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not shell.poll(timeout=50):
            continue
        _, msg = client.session.recv(shell, mode=zmq.NOBLOCK)
        if msg is None or msg["parent_header"].get("msg_id") != request["header"]["msg_id"]:
            continue
        if msg["content"]["status"] != "ok":
            raise RuntimeError(f"{code!r} failed in the kernel: {msg['content'].get('evalue')}")
        return
    raise TimeoutError(f"the kernel did not run {code!r} within {timeout:g} s")
