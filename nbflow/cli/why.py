from __future__ import annotations

import os

import click

from nbflow.cli.main import report_errors


@click.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.argument("step", required=False)
@click.option("-p", "--parameters", "params", nargs=2, multiple=True, metavar="NAME VALUE",
              help="Explain a run with these parameters (as for execute).")
@click.option("-r", "--parameters_raw", "raw", nargs=2, multiple=True, metavar="NAME VALUE")
@click.option("-f", "--parameters_file", "files", multiple=True,
              type=click.Path(exists=True, dir_okay=False))
@click.option("-y", "--parameters_yaml", "yamls", multiple=True)
@click.option("--home", envvar="NBFLOW_HOME", default=None)
@report_errors
def why(notebook: str, step: str | None, params: tuple[tuple[str, str], ...],
        raw: tuple[tuple[str, str], ...], files: tuple[str, ...], yamls: tuple[str, ...],
        home: str | None) -> None:
    """Say, for each step of NOTEBOOK (or just STEP), whether `nbflow execute` would reuse it
    or run it, and what changed if it runs. Starts no kernel."""
    from nbflow.errors import NbflowError
    from nbflow.graph.build import build_dag
    from nbflow.notebook.params import resolve_parameters
    from nbflow.notebook.reader import read_notebook
    from nbflow.run.why import explain_notebook
    from nbflow.store.home import Home

    spec = read_notebook(notebook)
    dag = build_dag(spec)
    if step is not None and step not in {s.name for s in dag.steps}:
        raise NbflowError(f"no step {step!r} in {notebook}",
                          hint=f"steps: {', '.join(s.name for s in dag.steps)}")
    values = resolve_parameters(spec.parameters, cli=dict(params), raw=dict(raw),
                                yaml_values=_yaml_values(files, yamls), env=os.environ,
                                notebook=notebook)
    where = Home(home).require()
    click.echo(f"home: {where.url}", err=True)
    for verdict in explain_notebook(dag, values, where):
        if step is not None and verdict.step != step:
            continue
        colour = "green" if verdict.action == "reused" else "yellow"
        head = f"{verdict.step:<16} cell {verdict.cell:<3} "
        if verdict.action == "reused":
            origin = ", ".join(verdict.reused_from)
            click.echo(head + click.style("reused", fg=colour) + f"  from {origin}")
            continue
        click.echo(head + click.style(verdict.action, fg=colour))
        for reason in verdict.reasons:
            click.echo(f"{'':<26}- {reason}")


def _yaml_values(files: tuple[str, ...], yamls: tuple[str, ...]) -> dict[str, object]:
    if not files and not yamls:
        return {}  # importing yaml costs more than the rest of a small `why`
    from nbflow.run.request import yaml_values

    return yaml_values(files, yamls)
