"""Widgets in a real kernel: the history shown right after ``%nbflow run`` (no ``--wait``)
fills in, every time, and every widget message comes from the kernel's main thread.

The kernel is a real ipykernel started by jupyter_client; the test reads the widget
models' state back from the comm messages on IOPub, as a browser would.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbbuild import make_notebook
from nbtest import ROOT

TRIES = 20


class Frontend:
    """The browser's side of the comms: widget model state by comm id."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.models: dict[str, dict[str, Any]] = {}
        self.parent: dict[str, str] = {}  # comm id -> msg id of the request that opened it
        self.errors: list[str] = []

    def execute(self, code: str) -> str:
        return str(self.client.execute(code))

    def pump(self, until: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until():
                return True
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            self.handle(msg)
        return bool(until())

    def handle(self, msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open":
            self.models[content["comm_id"]] = dict(content["data"].get("state", {}))
            self.parent[content["comm_id"]] = msg["parent_header"].get("msg_id", "")
        elif kind == "comm_msg" and content["data"].get("method") == "update":
            self.models.setdefault(content["comm_id"], {}).update(content["data"]["state"])
        elif kind == "error":
            self.errors.append("\n".join(content["traceback"]))
        elif kind == "stream" and content["name"] == "stderr":
            self.errors.append(content["text"])

    def table_of(self, request: str) -> dict[str, Any] | None:
        """The runs table (SelectMultiple) that the cell ``request`` displayed."""
        for comm, state in self.models.items():
            if self.parent.get(comm) == request and state.get("_model_name") == \
                    "SelectMultipleModel":
                return state
        return None


@pytest.fixture
def frontend(tmp_path: Path) -> Iterator[Frontend]:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "NBFLOW_HOME": str(tmp_path / ".nbflow")}
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        yield Frontend(kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_history_right_after_a_background_run_fills_in_every_time(
        frontend: Frontend, tmp_path: Path) -> None:
    make_notebook(["import time\n%load_ext nbflow", ("pause = 0.3", ["parameters"]),
                   "%%step work\ntime.sleep(pause)\nvalue = pause * 2"], tmp_path / "hist.ipynb")
    ready = frontend.execute("%load_ext nbflow\nfrom nbflow.widgets import _ui\n_ui.bind()\n"
                             "assert _ui._main_loop is not None, 'no main-thread loop found'")
    assert frontend.pump(lambda: frontend.client.get_shell_msg(timeout=60)["parent_header"]
                         ["msg_id"] == ready, 60)
    assert not frontend.errors, frontend.errors
    for attempt in range(1, TRIES + 1):
        # every fourth run executes; the others are answered from the cache at once
        options = " --no-cache" if attempt % 4 == 1 else ""
        frontend.execute(f"%nbflow run hist.ipynb{options}")
        shown = frontend.execute("%nbflow history")
        pathspec = f"hist/{attempt}"

        def filled(shown: str = shown, pathspec: str = pathspec) -> bool:
            table = frontend.table_of(shown)
            labels = table.get("_options_labels", []) if table else []
            return any(pathspec in label and "succeeded" in label for label in labels)

        assert frontend.pump(filled, 90), (
            f"try {attempt}: the history never showed {pathspec} succeeded: "
            f"{frontend.table_of(shown)}\n{frontend.errors}")
    assert not [e for e in frontend.errors if "Traceback" in e], frontend.errors
