"""Runs started from the lab: ``nbflow execute`` subprocesses and their event streams.

Each run is the real CLI in its own process (never in a kernel, never on the server's
event loop), started with ``--events -`` so its task events arrive as JSON lines on its
stdout; its stderr (what a terminal would show) arrives as ``output`` events. Cancel is
Ctrl-C: SIGINT to the driver, which stops its kernels and records the run ``cancelled``;
a driver that has not stopped after ``cancel_grace`` seconds gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import NbflowError, ResumeError
from nbflow.store.home import Home

MAX_EVENTS = 20_000  # per run; beyond this, terminal output lines are dropped (counted)


class UnknownRun(NbflowError):
    """A run handle this server does not know (started by another server, or mistyped)."""


@dataclass
class RunHandle:
    handle: str
    path: str  # the notebook, as the browser named it
    process: Any  # asyncio.subprocess.Process
    started: float = field(default_factory=time.time)
    events: list[dict[str, Any]] = field(default_factory=list)
    run: str | None = None  # FLOW/N, once the driver has recorded it
    from_step: str | None = None  # "run from here": the step it resumes from
    returncode: int | None = None
    cancelled: bool = False
    dropped: int = 0
    tasks: set[Any] = field(default_factory=set)  # its follower and escalation, kept alive
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def add(self, event: dict[str, Any]) -> None:
        if len(self.events) >= MAX_EVENTS and event.get("kind") == "output":
            self.dropped += 1
            return
        event["seq"] = len(self.events)
        self.events.append(event)
        if event.get("kind") == "run-started" and event.get("run"):
            self.run = str(event["run"])
        self.changed.set()
        self.changed = asyncio.Event()

    def summary(self) -> dict[str, Any]:
        return {"handle": self.handle, "path": self.path, "run": self.run,
                "started": self.started, "done": self.done, "returncode": self.returncode,
                "cancelled": self.cancelled, "from": self.from_step}


def execute_argv(notebook: str, home: Home, *, params: Mapping[str, str],
                 resume: str | None, from_step: str | None, tags: Sequence[str] = (),
                 max_workers: int | None = None) -> list[str]:
    """The ``nbflow execute`` command line for a run the lab asked for."""
    argv = [sys.executable, "-m", "nbflow", "execute", notebook, "--events", "-",
            "--home", home.url]
    if not home.is_local:
        argv += ["--catalog", home.catalog_path]
    for name, value in params.items():
        argv += ["-p", name, value]
    if resume is not None or from_step is not None:
        argv += ["--resume", resume] if resume else ["--resume"]
    if from_step is not None:
        argv += ["--from", from_step]  # STEP and what follows re-execute, cached or not
    for tag in tags:
        argv += ["--tag", tag]
    if max_workers:
        argv += ["--max-workers", str(max_workers)]
    return argv


def check_request(notebook: str, home: Home, *, params: Mapping[str, str],
                  resume: str | None, from_step: str | None) -> None:
    """Raise what ``nbflow execute`` would refuse before it runs anything: an invalid
    notebook, a bad parameter value (coerced by the code ``-p`` uses), a bad resume."""
    from nbflow.run.request import build_run

    _spec, dag, _options = build_run({
        "notebook": notebook, "params": tuple(params.items()),
        "resume": resume if resume is not None or from_step is None else "",
        "from_step": from_step})
    if resume is None and from_step is None:
        return
    if not os.path.exists(home.catalog_path):
        raise ResumeError(f"--resume: {dag.spec.flow!r} has no run to resume",
                          hint="run it once first")
    from nbflow.run.reuse import plan_resume
    from nbflow.store.catalog import Catalog

    plan_resume(Catalog(home.catalog_path), dag, resume or "", from_step)


class RunManager:
    """The runs this server started, by handle, for the server's lifetime."""

    def __init__(self, *, cancel_grace: float = 30.0) -> None:
        self.cancel_grace = cancel_grace
        self.handles: dict[str, RunHandle] = {}

    async def start(self, argv: list[str], *, path: str, cwd: str,
                    from_step: str | None = None, wait_for_run: float = 15.0) -> RunHandle:
        """Start the run; return once it has a run id (or ``wait_for_run`` has passed)."""
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=1 << 24,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        handle = RunHandle(uuid.uuid4().hex[:12], path, process, from_step=from_step)
        self.handles[handle.handle] = handle
        _keep(handle, self._follow(handle))
        deadline = time.monotonic() + wait_for_run
        while handle.run is None and not handle.done and time.monotonic() < deadline:
            await self.wait(handle, deadline - time.monotonic())
        return handle

    def get(self, handle: str) -> RunHandle:
        found = self.handles.get(handle)
        if found is None:
            raise UnknownRun(f"no run {handle!r} was started by this server",
                             hint="the server may have restarted; see the run history")
        return found

    def of_notebook(self, path: str) -> list[RunHandle]:
        return [h for h in self.handles.values() if h.path == path]

    async def wait(self, handle: RunHandle, timeout: float) -> None:
        """Until the handle has a new event, or is done, or ``timeout`` seconds."""
        if handle.done:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(handle.changed.wait(), max(0.0, timeout))

    async def events(self, handle: RunHandle, since: int, timeout: float) -> dict[str, Any]:
        """Events from ``since`` on; waits up to ``timeout`` s when there are none yet."""
        since = max(0, since)
        if len(handle.events) <= since:
            await self.wait(handle, timeout)
        done = handle.done  # read first: once done, no event is added after it
        return {"events": handle.events[since:], "next": len(handle.events), "done": done,
                "returncode": handle.returncode, "run": handle.run, "dropped": handle.dropped}

    async def cancel(self, handle: RunHandle) -> bool:
        """Ctrl-C to the driver; False when it had already ended."""
        if handle.done:
            return False
        handle.cancelled = True
        _keep(handle, self._interrupt(handle))
        return True

    async def _interrupt(self, handle: RunHandle) -> None:
        # A driver still starting up has no run to record as cancelled yet: wait until it
        # has one (or has ended), so every cancelled run is in the history as such.
        deadline = time.monotonic() + 20
        while handle.run is None and not handle.done and time.monotonic() < deadline:
            await self.wait(handle, deadline - time.monotonic())
        if handle.done:
            return
        self._signal(handle, signal.SIGINT)
        await self._escalate(handle)

    async def cancel_all(self) -> None:
        running = [h for h in self.handles.values() if not h.done]
        for handle in running:
            await self.cancel(handle)
        for handle in running:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(handle.finished.wait(), self.cancel_grace + 15)

    # -- following a process ------------------------------------------------------------

    async def _follow(self, handle: RunHandle) -> None:
        process = handle.process
        await asyncio.gather(self._read_events(handle, process.stdout),
                             self._read_output(handle, process.stderr))
        handle.returncode = await process.wait()
        if not any(e.get("kind") == "run-finished" for e in handle.events):
            # refused before it ran (exit 2), or killed: say so in the stream's own terms
            handle.add({"kind": "run-finished", "run": handle.run, "time": time.time(),
                        "status": "cancelled" if handle.cancelled else "failed",
                        "returncode": handle.returncode})
        handle.finished.set()
        handle.changed.set()

    async def _read_events(self, handle: RunHandle, stream: Any) -> None:
        async for raw in _lines(stream):
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            if isinstance(event, dict) and "kind" in event:
                handle.add(event)
            elif raw.strip():  # something printed to stdout that is not an event
                handle.add({"kind": "output", "stream": "stdout", "text": raw,
                            "run": handle.run, "time": time.time()})

    async def _read_output(self, handle: RunHandle, stream: Any) -> None:
        async for raw in _lines(stream):
            handle.add({"kind": "output", "stream": "stderr", "text": raw, "run": handle.run,
                        "time": time.time()})

    async def _escalate(self, handle: RunHandle) -> None:
        for signum, wait in ((signal.SIGTERM, self.cancel_grace), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(handle.finished.wait(), wait)
                return
            self._signal(handle, signum, group=signum == signal.SIGKILL)

    def _signal(self, handle: RunHandle, signum: int, *, group: bool = False) -> None:
        with contextlib.suppress(ProcessLookupError):
            if group:  # the driver's kernels too: it could not stop them itself
                os.killpg(handle.process.pid, signum)
            else:
                handle.process.send_signal(signum)


def _keep(handle: RunHandle, coroutine: Any) -> None:
    """Run ``coroutine`` as a task the handle holds on to (the loop keeps only weak ones)."""
    task = asyncio.get_running_loop().create_task(coroutine)
    handle.tasks.add(task)
    task.add_done_callback(handle.tasks.discard)


async def _lines(stream: Any) -> Any:
    """Decoded lines of a subprocess pipe (without the newline), robust to long lines."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line longer than the reader's limit: take what is there
            raw = await stream.read(1 << 16)
        if not raw:
            return
        yield raw.decode("utf-8", errors="replace").rstrip("\n")
