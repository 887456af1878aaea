"""``nbflow catalog rebuild|check``: the catalog is an index of the runs' journals and
manifests; recreate it from them, or say where the two disagree."""

from __future__ import annotations

import sys

import click

from nbflow.cli.main import EXIT_HOME, report_errors

_home_option = click.option("--home", envvar="NBFLOW_HOME", default=None,
                            help="The nbflow home [default: ./.nbflow].")


@click.group()
def catalog() -> None:
    """Rebuild the catalog from runs/ and objects/, or check it against them."""


@catalog.command()
@_home_option
@report_errors
def rebuild(home: str | None) -> None:
    """Recreate catalog.duckdb from the runs' journals and manifests (a new file is built,
    then swapped in; readers see the old catalog or the new one)."""
    from nbflow.store.home import Home
    from nbflow.store.rebuild import rebuild as rebuild_catalog

    where = Home(home).require()
    click.echo(f"home: {where.url}", err=True)
    result = rebuild_catalog(where)
    for problem in result.problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    crashed = f" ({len(result.crashed)} crashed: {', '.join(result.crashed)})" \
        if result.crashed else ""
    click.echo(f"rebuilt {result.path}: {result.runs} run(s){crashed}")


@catalog.command()
@_home_option
@report_errors
def check(home: str | None) -> None:
    """Compare the catalog with one rebuilt from the journals; exit 3 if they differ."""
    from nbflow.store.home import Home
    from nbflow.store.rebuild import check as check_catalog
    from nbflow.store.rebuild import describe

    where = Home(home).require()
    click.echo(f"home: {where.url}", err=True)
    result, diffs = check_catalog(where)
    for problem in result.problems:
        click.secho(f"warning: {problem}", fg="yellow", err=True)
    if not diffs:
        click.echo(f"the catalog matches the journals of {result.runs} run(s)")
        return
    for line in describe(diffs):
        click.echo(line)
    click.secho("the catalog differs from the journals; `nbflow catalog rebuild` "
                "recreates it from them", fg="red", err=True)
    sys.exit(EXIT_HOME)
