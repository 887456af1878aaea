"""Catalog writes off the scheduler's hot path.

Events queue up and a background thread applies whatever has arrived as ONE
transaction (each catalog open costs 20-30 ms, so per-event transactions would
serialize the whole run behind the catalog). ``close()`` flushes everything; a
failed batch is retried, never dropped silently.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

_STOP = object()


class Recorder:
    def __init__(self, catalog: Any, *, retries: int = 5, linger: float = 0.5) -> None:
        self.catalog = catalog
        self.retries = retries
        # After the first event of a batch, wait this long for more: events come in
        # bursts (a step's cached tasks, a wide foreach), and each commit costs 20-50 ms
        # of CPU that the task kernels need. Readers refresh every second or two anyway;
        # a crash loses at most this much of the catalog, never a task's manifest.
        self.linger = linger
        self._queue: queue.Queue[Any] = queue.Queue()
        self._error: BaseException | None = None
        self._closing = threading.Event()  # cuts a linger short when the run ends
        self._thread = threading.Thread(target=self._loop, name="nbflow-recorder", daemon=True)
        self._thread.start()

    def emit(self, *events: Any) -> None:
        for event in events:
            self._queue.put(event)

    def close(self) -> None:
        """Apply every queued event, then stop; raises if the catalog refused them."""
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                self._closing.wait(self.linger)
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stopping = any(e is _STOP for e in batch)
            events = [e for e in batch if e is not _STOP]
            if events:
                self._apply(events)

    def _apply(self, events: list[Any]) -> None:
        for attempt in range(self.retries):
            try:
                self.catalog.apply(events)
                return
            except Exception as exc:  # keep the run going; report if it never succeeds
                if attempt == self.retries - 1:
                    self._error = exc
                    print(f"nbflow: could not record {len(events)} catalog event(s): {exc}",
                          file=sys.stderr)
                time.sleep(0.1 * 2**attempt)
