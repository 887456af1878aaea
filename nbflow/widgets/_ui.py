"""Every widget model is created and changed on the kernel's main thread.

ipywidgets is not thread-safe: a trait set from a scheduler thread while the user clicks
can interleave two comm messages' state and lose one. So the widgets' other threads
(the run's observer callbacks, tickers, pollers) never touch a widget: they hand a
function to :func:`call`, which runs it on the main thread — at once when already
there, else through the kernel's event loop (ipykernel runs one on the main thread
between cells). While the main thread is blocked in :func:`pump` (``%nbflow run
--wait``) it runs the queued functions itself, so the view stays live.

Outside a kernel's loop (a plain Python process, IPython's test shell) there is no loop
to hand work to: functions run where they are called, one at a time.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.RLock()  # without a loop: one caller at a time
_queue: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
_main_loop: asyncio.AbstractEventLoop | None = None


def bind() -> None:
    """Remember the main thread's running loop (call from the main thread, in a cell)."""
    global _main_loop
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        _main_loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop runs here: not inside a kernel
        _main_loop = None


def on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def call(function: Callable[[], Any]) -> None:
    """Run ``function`` on the main thread: now if this is it, else as soon as it is free."""
    loop = _main_loop
    if on_main_thread() or loop is None or loop.is_closed():
        with _lock:
            _run(function)
        return
    _queue.put(function)
    try:
        loop.call_soon_threadsafe(drain)
    except RuntimeError:  # the loop was closed meanwhile (kernel shutting down)
        pass


def call_later(delay: float, function: Callable[[], Any]) -> None:
    """Run ``function`` on the main thread after ``delay`` seconds."""
    loop = _main_loop
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(loop.call_later, delay, lambda: call(function))
        return
    timer = threading.Timer(delay, call, args=(function,))
    timer.daemon = True
    timer.start()


def drain() -> None:
    """Run everything queued for the main thread (on the main thread)."""
    while True:
        try:
            function = _queue.get_nowait()
        except queue.Empty:
            return
        _run(function)


def pump(done: threading.Event, timeout: float | None = None) -> bool:
    """Block the main thread until ``done`` is set, running queued widget updates."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while not done.is_set():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        try:
            function = _queue.get(timeout=0.05)
        except queue.Empty:
            continue
        _run(function)
    drain()
    return True


def _run(function: Callable[[], Any]) -> None:
    try:
        function()
    except Exception:  # a view that fails to draw must not break the run or the loop
        import traceback

        traceback.print_exc()
