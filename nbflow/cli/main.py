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
        "catalog": ("nbflow.cli.catalog", "catalog",
                    "Rebuild the catalog from runs/ and objects/, or check it against them."),
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

    \b
    Exit codes:
      0    success
      1    a step failed
      2    bad input or usage (nothing ran)
      3    the home or catalog is unusable (missing, read-only for a writer, damaged)
      4    an internal error in nbflow (a bug: please report it)
      130  cancelled by SIGINT (Ctrl-C)
      143  cancelled by SIGTERM
    """


EXIT_STEP_FAILED, EXIT_USAGE, EXIT_HOME, EXIT_INTERNAL = 1, 2, 3, 4
EXIT_SIGINT, EXIT_SIGTERM = 130, 143


def report_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn every error into a short message and its documented exit code, not a traceback
    (``NBFLOW_DEBUG=1`` shows the traceback of an unexpected one)."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nbflow.errors import NbflowError

        try:
            return function(*args, **kwargs)
        except NbflowError as exc:
            _fail(str(exc), exc.cli_exit)
        except KeyboardInterrupt:
            _fail("cancelled", EXIT_SIGINT)
        except MemoryError:
            _fail("nbflow ran out of memory (MemoryError)",
                  EXIT_INTERNAL, "free memory or lower --max-workers")
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            _fail(f"cannot use{where}: {exc.strerror or exc}", EXIT_HOME,
                  "check the path, its permissions and free disk space")
        except Exception as exc:
            import os

            if os.environ.get("NBFLOW_DEBUG"):
                raise
            _fail(f"nbflow failed unexpectedly: {type(exc).__name__}: {exc}", EXIT_INTERNAL,
                  "this is a bug in nbflow; run again with NBFLOW_DEBUG=1 for the traceback "
                  "and report it")

    return wrapper


def _fail(message: str, code: int, hint: str | None = None) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    if hint:
        click.echo(f"  hint: {hint}", err=True)
    sys.exit(code)


def main() -> None:
    from nbflow._imports import skip_slow_optional_imports

    skip_slow_optional_imports()
    cli(prog_name="nbflow")


if __name__ == "__main__":
    main()
