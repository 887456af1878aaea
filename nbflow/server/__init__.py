"""The jupyter_server extension behind nbflow's JupyterLab extension (``labextension/``).

Enabled by ``jupyter_server_config.d/nbflow.json``, installed with the package. Its REST
handlers live under ``{base_url}nbflow/api/`` (docs/LAB_API.md). Nothing here is imported
by ``import nbflow``: jupyter_server imports it when it loads its extensions.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from nbflow.server.app import NbflowServer

    return [{"module": "nbflow.server", "app": NbflowServer}]
