"""``%nbflow run [NOTEBOOK] [OPTIONS]``: run the notebook headless from inside the kernel.

Arguments are parsed with the options of ``nbflow execute`` (``nbflow.run.arguments``),
so the options are the CLI's by construction. The run goes in a background thread: the cell
returns at once and the kernel stays usable (inspect data, open ``%nbflow history``)
while the ``RunProgress`` widget follows the run; ``--wait`` blocks the cell until the
run ends (the widget updates all the same, as comm messages do not need the cell to
finish) — what a notebook run top to bottom by papermill wants.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from nbflow.interactive.notebook_file import NO_NOTEBOOK_HINT, RanStep, unsaved_steps

USAGE = "%nbflow run [NOTEBOOK] [--wait] [nbflow execute options: -p NAME VALUE, --tag T, …]"


class LaunchError(Exception):
    """A problem with the arguments or the notebook; shown as a one-line usage error."""


def parse_run_args(args: list[str], default_notebook: str | None) -> dict[str, Any]:
    """The ``nbflow execute`` parameters for ``args``; NOTEBOOK defaults to this kernel's."""
    import click

    from nbflow.run.arguments import parse_execute_args

    def parse(tokens: list[str]) -> dict[str, Any]:
        return parse_execute_args(tokens, "%nbflow run")

    try:
        try:
            return parse(list(args))
        except click.MissingParameter as exc:
            if exc.param is None or exc.param.name != "notebook":
                raise
            if default_notebook is None:
                raise LaunchError(f"%nbflow run: which notebook? {NO_NOTEBOOK_HINT}") from None
            return parse([default_notebook, *args])
    except click.exceptions.Exit:  # --help printed the usage
        raise LaunchError("") from None
    except click.ClickException as exc:
        raise LaunchError(f"%nbflow run: {exc.format_message()}\nusage: {USAGE}") from None


def launch(args: list[str], *, default_notebook: str | None,
           ran: Mapping[str, RanStep]) -> Any:
    """Start the run in the background and display its ``RunProgress``; returns the view."""
    from IPython.display import display

    from nbflow.errors import NbflowError
    from nbflow.run.driver import execute
    from nbflow.run.request import build_run
    from nbflow.store.home import Home
    from nbflow.widgets import RunProgress

    wait = "--wait" in args
    params = parse_run_args([a for a in args if a != "--wait"], default_notebook)
    notebook = params["notebook"]
    stale = unsaved_steps(notebook, ran)
    try:
        spec, dag, options = build_run(params)
    except NbflowError as exc:
        raise LaunchError(f"%nbflow run: {exc}") from None
    if stale:
        print(f"warning: {notebook} on disk is older than cells this kernel ran: "
              f"{', '.join(stale)}. The run reads the saved file: save the notebook "
              "(Ctrl+S) and run %nbflow run again to include those edits.")
    view = RunProgress(notebook, home=Home(options.home, catalog=options.catalog))
    display(view)

    def target(progress: RunProgress) -> Any:
        return execute(spec, dag, options, stream=io.StringIO(), observers=(progress.events,))

    view.start(target)
    if wait:
        view.wait()
    return view
