"""A real jupyter_server with the nbflow extension, through pytest-jupyter's fixtures.

pytest-jupyter registers no plugin entry point, and ``pytest_plugins`` is only allowed in
the root conftest, so its fixtures (and its coroutine-test hook) are imported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403
from pytest_jupyter.pytest_tornasync import *  # noqa: F403


@pytest.fixture
def nbflow_home(jp_root_dir: Path) -> Path:
    return jp_root_dir / ".nbflow"


@pytest.fixture
def jp_server_config(nbflow_home: Path) -> dict[str, Any]:
    # The editable install has no jupyter_server_config.d/nbflow.json: enable it here.
    return {"ServerApp": {"jpserver_extensions": {"nbflow.server": True}},
            "NbflowServer": {"home": str(nbflow_home)}}


@pytest.fixture
def api(jp_fetch: Any) -> Callable[..., Any]:
    """``await api("analyze", body={...})`` or ``await api("status", path=...)`` -> (code, JSON)."""

    async def call(endpoint: str, *, body: Any = None, method: str | None = None,
                   **params: str) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"raise_error": False, "params": params}
        if body is not None:
            kwargs.update(method=method or "POST", body=json.dumps(body))
        else:
            kwargs["method"] = method or "GET"
            if kwargs["method"] == "POST":
                kwargs["body"] = "{}"
        response = await jp_fetch("nbflow", "api", *endpoint.split("/"), **kwargs)
        return response.code, json.loads(response.body or b"null")

    return call
