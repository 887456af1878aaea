"""Handlers for the run history and the runs the lab starts (docs/LAB_API.md)."""

from __future__ import annotations

from typing import Any

import tornado.web

from nbflow.server.handlers import API, NbflowHandler, _flow


class RunsHandler(NbflowHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def work() -> Any:
            from nbflow.server.status import run_history

            _path, full = self.notebook(self.get_argument("path", ""))
            return {"runs": await self.in_thread(run_history, self.app.resolve_home(),
                                                 _flow(full))}

        await self.answer(work)


def run_routes() -> list[tuple[str, type[NbflowHandler]]]:
    return [(f"{API}/runs", RunsHandler)]
