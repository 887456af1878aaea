"""The REST handlers under ``{base_url}nbflow/api/`` (docs/LAB_API.md).

Thin by design: parse the request, call the function the CLI would call (in a worker
thread, so a catalog read or a large analysis never blocks the server), answer JSON.
nbflow's own errors become ``{"message", "hint"}`` with a 4xx status; anything else a
500 with a one-line message. The client never sees a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler

from nbflow.errors import NbflowError, ValidationError

API = "nbflow/api"


class BadRequest(NbflowError):
    """The request itself is malformed (missing field, path outside the root)."""


class NbflowHandler(APIHandler):
    def initialize(self, app: Any) -> None:
        self.app = app

    # -- helpers ------------------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise BadRequest(f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        return data

    def notebook(self, path: object) -> tuple[str, str]:
        """(path as sent, absolute file path) for a notebook path relative to root_dir."""
        if not isinstance(path, str) or not path.strip():
            raise BadRequest("no notebook path given", hint="send the notebook's path "
                             "relative to the server's root, e.g. \"work/classifier.ipynb\"")
        root = self.app.root_dir()
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if os.path.commonpath([root, full]) != os.path.realpath(root):
            raise BadRequest(f"{path} is outside the server's root directory")
        return path, full

    async def in_thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))

    async def answer(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` and write its JSON, or the error as nbflow words it."""
        try:
            result = await work()
        except tornado.web.HTTPError:
            raise
        except NbflowError as exc:
            self.set_status(400)
            self.finish(json.dumps(error_json(exc)))
            return
        except Exception as exc:  # a bug of ours: logged here, one line to the client
            self.log.exception("nbflow: %s %s failed", self.request.method, self.request.path)
            self.set_status(500)
            self.finish(json.dumps({"message": f"nbflow could not answer: "
                                               f"{type(exc).__name__}: {exc}",
                                    "hint": "see the Jupyter server's log"}))
            return
        self.finish(json.dumps(result, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors tornado raises (404, 405, 403) as JSON, never with a traceback."""
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.finish(json.dumps({"message": message, "hint": None}))


def error_json(exc: NbflowError) -> dict[str, Any]:
    reply: dict[str, Any] = {"message": exc.message, "hint": exc.hint, "cell": exc.cell,
                             "step": exc.step}
    if isinstance(exc, ValidationError):
        reply["message"] = exc.message.splitlines()[0]
        reply["errors"] = [{"message": p.message, "hint": p.hint, "cell": p.cell,
                            "index": p.cell - 1 if p.cell else None, "step": p.step}
                           for p in exc.problems]
    return reply


class AnalyzeHandler(NbflowHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        async def work() -> Any:
            from nbflow.server.analysis import analyze_cells

            data = self.body()
            _path, full = self.notebook(data.get("path"))
            cells = data.get("cells")
            if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
                raise BadRequest("\"cells\" must be a list of cell objects")
            params = data.get("params") or {}
            if not isinstance(params, dict):
                raise BadRequest("\"params\" must be an object of NAME: value")
            metadata = data.get("metadata")
            if not isinstance(metadata, dict):
                metadata = await self.in_thread(_saved_metadata, full)
            return await self.in_thread(
                analyze_cells, full, cells, metadata=metadata, home=self.app.resolve_home(),
                params={str(k): _param_text(v) for k, v in params.items()})

        await self.answer(work)


class StatusHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def work() -> Any:
            from nbflow.server.status import run_status

            _path, full = self.notebook(self.get_argument("path", ""))
            return await self.in_thread(run_status, self.app.resolve_home(), _flow(full),
                                        self.get_argument("run", None), self.app.root_dir())

        await self.answer(work)


class LogHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def work() -> Any:
            from nbflow.server.status import task_log

            notebook = self.get_argument("notebook", "") not in ("", "0", "false")
            return await self.in_thread(task_log, self.app.resolve_home(),
                                        self.get_argument("task", ""), self.app.root_dir(),
                                        notebook=notebook)

        await self.answer(work)


def _flow(full: str) -> str:
    from pathlib import Path

    return Path(full).stem


def _param_text(value: object) -> str:
    """A form value as ``-p`` takes it: strings as typed, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _saved_metadata(full: str) -> dict[str, Any]:
    """The saved notebook's metadata (its kernelspec counts in cache keys)."""
    from nbflow.notebook import ipynb

    try:
        return dict(ipynb.read(full).get("metadata", {}))
    except Exception:  # not saved yet, or unreadable: the cells sent are what we have
        return {}


def routes(app: Any) -> list[tuple[str, type[NbflowHandler], dict[str, Any]]]:
    from nbflow.server.runs_handlers import run_routes

    table: list[tuple[str, type[NbflowHandler]]] = [
        (f"{API}/analyze", AnalyzeHandler),
        (f"{API}/status", StatusHandler),
        (f"{API}/log", LogHandler),
        *run_routes(),
    ]
    return [(pattern, handler, {"app": app}) for pattern, handler in table]
