"""What the terminal shows while a run goes: one line per task state change, a bar for wide foreach."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

WIDE = 8  # a branch with at least this many tasks gets a progress bar on a terminal


class Progress:
    """Prints task state changes and forwards each one to ``observers``.

    An observer (e.g. the live run widget) implements any of ``message(text)``,
    ``fan_out(step, n)``, ``started(step, index, pid, mode, attempt)``,
    ``finished(step, index, status, seconds, note)`` and ``close()``; the scheduler's
    worker threads call them, so they must be thread-safe.
    """

    def __init__(self, pathspec: str, *, stream: TextIO | None = None, quiet: bool = False,
                 observers: tuple[Any, ...] = ()) -> None:
        self.pathspec = pathspec
        self.observers = observers
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._bars: dict[str, Any] = {}

    def _line(self, text: str) -> None:
        if self.quiet:
            return
        stamp = f"{time.monotonic() - self.t0:7.2f}s"
        with self._lock:
            line = f"{stamp}  {text}"
            if self._bars:
                from tqdm import tqdm

                tqdm.write(line, file=self.stream)
            else:
                print(line, file=self.stream, flush=True)

    def _notify(self, method: str, *args: Any) -> None:
        for observer in self.observers:
            handler = getattr(observer, method, None)
            if handler is not None:
                handler(*args)

    def message(self, text: str) -> None:
        self._notify("message", text)
        self._line(text)

    def fan_out(self, step: str, n: int) -> None:
        self._notify("fan_out", step, n)
        self._line(f"{self.pathspec}/{step}: fanning out into {n} task(s)")
        if self.tty and not self.quiet and n >= WIDE:
            from tqdm import tqdm

            with self._lock:
                self._bars[step] = tqdm(total=n, desc=step, file=self.stream, leave=True)

    def _wide(self, step: str) -> bool:
        return step in self._bars

    def started(self, step: str, index: int, pid: int, mode: str, attempt: int = 0) -> None:
        self._notify("started", step, index, pid, mode, attempt)
        if self._wide(step):
            return
        again = f" (retry {attempt})" if attempt else ""
        self._line(f"{self.pathspec}/{step}/{index} started   pid {pid} [{mode}]{again}")

    def finished(self, step: str, index: int, status: str, seconds: float, note: str = "") -> None:
        self._notify("finished", step, index, status, seconds, note)
        bar = self._bars.get(step)
        if bar is not None and status in ("succeeded", "cached"):
            with self._lock:
                bar.update(1)
                if bar.n >= bar.total:
                    bar.close()
                    del self._bars[step]
            return
        extra = f"  {note}" if note else ""
        # the catalog's tasks.duration_s: execution, from the "started" line to this one
        self._line(f"{self.pathspec}/{step}/{index} {status:<9} ran {seconds:6.2f}s{extra}")

    def close(self) -> None:
        self._notify("close")
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
