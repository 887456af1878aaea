"""The ``nbflow`` command. Each subcommand lives in its own module and imports its work lazily."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from nbflow import __version__


class LazyGroup(click.Group):
    """Subcommands are imported only when invoked (or listed), so ``nbflow --help`` stays fast."""

    COMMANDS = {
        "execute": ("nbflow.cli.execute", "execute", "Run a notebook headless as a DAG of tasks."),
        "show": ("nbflow.cli.show", "show", "Print a notebook's DAG: steps, edges, inputs, outputs."),
        "why": ("nbflow.cli.why", "why", "Say which steps would run or be reused, and why."),
        "runs": ("nbflow.cli.read", "runs", "List runs, newest first."),
        "logs": ("nbflow.cli.read", "logs", "Print a task's output (stdout, stderr, error)."),
        "dump": ("nbflow.cli.read", "dump", "Show a run's, step's or task's artifacts."),
        "sql": ("nbflow.cli.read", "sql", "Query the catalog with SQL."),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        entry = self.COMMANDS.get(name)
        if entry is None:
            return None
        import importlib

        command = getattr(importlib.import_module(entry[0]), entry[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_m, _a, help_) in self.COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nbflow")
def cli() -> None:
    """nbflow: notebooks as reproducible, parallel, cached workflows.

    Mark cells with %%step / %%branch, then run `nbflow execute NOTEBOOK`.
    """


def report_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nbflow's own errors into a short message and exit code 2, not a traceback."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nbflow.errors import NbflowError

        try:
            return function(*args, **kwargs)
        except NbflowError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)

    return wrapper


def main() -> None:
    from nbflow._imports import skip_slow_optional_imports

    skip_slow_optional_imports()
    cli(prog_name="nbflow")


if __name__ == "__main__":
    main()
