"""Handlers for the run history and the runs the lab starts (docs/LAB_API.md)."""

from __future__ import annotations

from typing import Any

import tornado.web

from nbflow.server.handlers import API, BadRequest, NbflowHandler, _flow, _param_text

LONG_POLL_S = 10.0


class RunsHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        """The notebook's run history, and the runs this server is following for it."""
        async def work() -> Any:
            from nbflow.server.status import run_history

            path, full = self.notebook(self.get_argument("path", ""))
            runs = await self.in_thread(run_history, self.app.resolve_home(), _flow(full))
            return {"runs": runs, "active": [h.summary() for h in self.app.runs.of_notebook(path)]}

        await self.answer(work)

    @tornado.web.authenticated
    async def post(self) -> None:
        """Start ``nbflow execute`` on the saved notebook."""
        async def work() -> Any:
            from nbflow.server.runs import check_request, execute_argv

            data = self.body()
            path, full = self.notebook(data.get("path"))
            params = data.get("params") or {}
            if not isinstance(params, dict):
                raise BadRequest("\"params\" must be an object of NAME: value")
            texts = {str(k): _param_text(v) for k, v in params.items()}
            resume, from_step = _optional(data, "resume"), _optional(data, "from")
            tags = data.get("tags") or []
            if not isinstance(tags, list):
                raise BadRequest("\"tags\" must be a list of strings")
            home = self.app.resolve_home()
            await self.in_thread(check_request, full, home, params=texts, resume=resume,
                                 from_step=from_step)
            argv = execute_argv(full, home, params=texts, resume=resume, from_step=from_step,
                                tags=[str(t) for t in tags], max_workers=self.app.max_workers)
            handle = await self.app.runs.start(argv, path=path, cwd=self.app.root_dir(),
                                               from_step=from_step)
            return {"handle": handle.handle, "run": handle.run}

        await self.answer(work)


class EventsHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self, handle: str) -> None:
        async def work() -> Any:
            runs = self.app.runs
            try:
                since = int(self.get_argument("since", "0"))
                timeout = float(self.get_argument("timeout", str(LONG_POLL_S)))
            except ValueError:
                raise BadRequest("since and timeout must be numbers") from None
            return await runs.events(runs.get(handle), since, min(max(timeout, 0.0), 30.0))

        await self.answer(work)


class CancelHandler(NbflowHandler):
    @tornado.web.authenticated
    async def post(self, handle: str) -> None:
        async def work() -> Any:
            runs = self.app.runs
            found = runs.get(handle)
            stopping = await runs.cancel(found)
            return {"ok": True, "run": found.run, "already_finished": not stopping}

        await self.answer(work)


def _optional(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"\"{key}\" must be a string or null")
    return value


def run_routes() -> list[tuple[str, type[NbflowHandler]]]:
    handle = r"(?P<handle>[0-9a-f]+)"
    return [(f"{API}/runs", RunsHandler),
            (f"{API}/runs/{handle}/events", EventsHandler),
            (f"{API}/runs/{handle}/cancel", CancelHandler)]
