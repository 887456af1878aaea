"""``NbflowServer``: the extension's configuration, its handlers and its running runs.

Where the home is: the ``NbflowServer.home`` setting if given, else ``$NBFLOW_HOME``,
else ``.nbflow`` in the server's root directory — what ``nbflow execute`` finds when it
runs from the folder JupyterLab was started in. ``NbflowServer.catalog`` (else
``$NBFLOW_CATALOG``) places the catalog when the home is remote (``s3://…``).
"""

from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Integer, Unicode

from nbflow.store.home import DEFAULT_HOME, Home


class NbflowServer(ExtensionApp):
    name = "nbflow"
    description = "nbflow's REST API for its JupyterLab extension"
    load_other_extensions = True

    home = Unicode(
        None, allow_none=True, config=True,
        help="The nbflow home (a folder or an fsspec URL). Default: $NBFLOW_HOME, else "
             ".nbflow in the server's root directory.",
    )
    catalog = Unicode(
        None, allow_none=True, config=True,
        help="The catalog file when the home is remote. Default: $NBFLOW_CATALOG, else "
             ".nbflow/catalog.duckdb in the server's root directory.",
    )
    max_workers = Integer(
        None, allow_none=True, config=True,
        help="--max-workers for runs started from the lab (default: nbflow execute's).",
    )
    cancel_grace = Float(
        30.0, config=True,
        help="Seconds a cancelled run gets to stop its kernels after SIGINT before SIGTERM.",
    )

    def root_dir(self) -> str:
        assert self.serverapp is not None
        return os.path.abspath(os.path.expanduser(self.serverapp.root_dir))

    def resolve_home(self) -> Home:
        """The home the lab reads and the runs it starts write (see the module doc)."""
        url = self.home or os.environ.get("NBFLOW_HOME") or os.path.join(
            self.root_dir(), DEFAULT_HOME)
        catalog = self.catalog or os.environ.get("NBFLOW_CATALOG")
        home = Home(url, catalog=catalog)
        if catalog is None and not home.is_local:
            home = Home(url, catalog=os.path.join(self.root_dir(), DEFAULT_HOME,
                                                  "catalog.duckdb"))
        return home

    def initialize_settings(self) -> None:
        from nbflow.server.runs import RunManager

        self.runs = RunManager(cancel_grace=self.cancel_grace)

    def initialize_handlers(self) -> None:
        from nbflow.server.handlers import routes

        self.handlers.extend(routes(self))

    async def stop_extension(self) -> None:
        """The server is stopping: cancel the runs it started, as Ctrl-C would."""
        await self.runs.cancel_all()
