"""The options of a headless run, shared by ``nbflow execute`` and ``%nbflow run``.

One definition, so the magic accepts exactly what the command accepts. ``build_run``
(``nbflow.run.request``) turns the parsed values into a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[Any], Any]] = [
    click.argument("notebook", type=click.Path(exists=True, dir_okay=False)),
    click.option("-p", "--parameters", "params", nargs=2, multiple=True, metavar="NAME VALUE",
        help="Set a parameter; VALUE is coerced to the default's type (JSON for lists/dicts)."),
    click.option("-r", "--parameters_raw", "raw", nargs=2, multiple=True, metavar="NAME VALUE",
        help="Set a parameter to a raw string, without coercion."),
    click.option("-f", "--parameters_file", "files", multiple=True,
        type=click.Path(exists=True, dir_okay=False), help="YAML file of parameters."),
    click.option("-y", "--parameters_yaml", "yamls", multiple=True, help="YAML string of parameters."),
    click.option("--max-workers", type=click.IntRange(min=1), default=None,
        help="Tasks running at once [default: CPU count]."),
    click.option("--max-num-splits", type=click.IntRange(min=1), default=100, show_default=True,
        help="Refuse a foreach wider than this."),
    click.option("--no-cache", is_flag=True, help="Run every task, reusing nothing."),
    click.option("--resume", is_flag=False, flag_value="", default=None, metavar="[RUN]",
        help="New run that clones RUN's finished tasks (default: the latest run) and "
             "re-executes the rest with the current code and RUN's parameters."),
    click.option("--from", "from_step", default=None, metavar="STEP",
        help="With --resume: re-execute from STEP (and everything after it)."),
    click.option("--tag", "tags", multiple=True, help="Tag the run (repeatable)."),
    click.option("--output", type=click.Path(dir_okay=False),
        help="Also write the executed notebook here (it is always kept with the run)."),
    click.option("--home", envvar="NBFLOW_HOME", default=None,
        help="Where artifacts, logs and the catalog live [default: ./.nbflow]."),
    click.option("--catalog", default=None, help="Catalog file, when --home is not a local path."),
    click.option("-q", "--quiet", is_flag=True, help="Print only the summary."),
]


def execute_options(function: F) -> F:
    """Decorate a click command with NOTEBOOK and every option of a headless run."""
    for option in reversed(_OPTIONS):
        function = option(function)
    return function


def parse_execute_args(tokens: list[str], prog: str) -> dict[str, Any]:
    """Parse ``tokens`` as ``nbflow execute`` would; click's exceptions propagate."""

    @click.command(name=prog)
    @execute_options
    def command(**_: Any) -> None:
        """Run a notebook headless."""

    return dict(command.make_context(prog, tokens).params)
