"""The reading side of the CLI: runs, logs, dump, sql. Never writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from nbflow.cli.main import report_errors

_home_option = click.option("--home", envvar="NBFLOW_HOME", default=None,
                            help="The nbflow home to read [default: ./.nbflow].")


def _home(home: str | None) -> Any:
    """The home to read (it must exist), named on stderr so stdout stays machine-readable."""
    from nbflow.store.home import Home

    where = Home(home).require()
    click.echo(f"home: {where.url}", err=True)
    return where


def _catalog(home: Any) -> Any:
    from nbflow.store.catalog import Catalog

    return Catalog(home.catalog_path, home)


def _tasks(run: Any, step: str, task: int | None) -> list[Any]:
    """The tasks a pathspec names, or a PathspecError listing what exists."""
    from nbflow.errors import PathspecError

    names = [s.name for s in run.steps()]
    if step not in names:
        raise PathspecError(f"run {run.pathspec} has no step {step!r}",
                            hint=f"its steps: {', '.join(names) or 'none'}")
    tasks = run[step].tasks()
    if task is None:
        return list(tasks)
    picked = [t for t in tasks if t.index == task]
    if not picked:
        indexes = ", ".join(str(t.index) for t in tasks) or "none"
        raise PathspecError(f"step {run.pathspec}/{step} has no task {task}",
                            hint=f"its tasks: {indexes}")
    return picked


def _value(data: Any, name: str, where: str, names: Any) -> Any:
    from nbflow.errors import PathspecError

    if name not in names:
        raise PathspecError(f"{where} has no artifact {name!r}",
                            hint=f"it has: {', '.join(sorted(names)) or 'none'}")
    return getattr(data, name)


def _table(frame: Any) -> str:
    import pandas as pd

    with pd.option_context("display.max_rows", 200, "display.max_columns", 50,
                           "display.width", 200, "display.max_colwidth", 60):
        return frame.to_string(index=False) if len(frame) else "(no rows)"


@click.command()
@click.argument("notebook", required=False)
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs to show.")
@_home_option
@report_errors
def runs(notebook: str | None, limit: int, home: str | None) -> None:
    """List runs, newest first: all flows, or NOTEBOOK's (a path or a flow name).

    started_utc: when the run started; wall_s: start to end of the run; exec_s: the
    execution time of its tasks added up (the catalog's tasks.duration_s)."""
    sql = """
        SELECT r.flow || '/' || r.run_id AS run, r.status,
               strftime(r.started_at, '%Y-%m-%d %H:%M:%S') AS started_utc,
               round(date_diff('millisecond', r.started_at, r.ended_at) / 1000.0, 1) AS wall_s,
               (SELECT round(sum(t.duration_s), 1) FROM tasks t
                 WHERE t.flow = r.flow AND t.run_id = r.run_id) AS exec_s,
               (SELECT count(*) FROM tasks t WHERE t.flow = r.flow AND t.run_id = r.run_id) AS tasks,
               (SELECT string_agg(p.name || '=' || p.value, ' ' ORDER BY p.name) FROM params p
                 WHERE p.flow = r.flow AND p.run_id = r.run_id) AS params,
               (SELECT string_agg(tag, ',' ORDER BY tag) FROM tags g
                 WHERE g.flow = r.flow AND g.run_id = r.run_id) AS tags
        FROM runs r {where} ORDER BY r.started_at DESC LIMIT ?"""
    catalog = _catalog(_home(home))
    params: list[Any] = []
    where = ""
    if notebook:
        where = "WHERE r.flow = ?"
        params.append(Path(notebook).stem)
    frame = catalog.query(sql.format(where=where), [*params, limit])
    frame = frame.fillna("")
    click.echo(_table(frame))


@click.command()
@click.argument("pathspec")
@click.option("--stderr", "only_stderr", is_flag=True, help="Only the task's stderr.")
@click.option("--stdout", "only_stdout", is_flag=True, help="Only the task's stdout.")
@_home_option
@report_errors
def logs(pathspec: str, only_stderr: bool, only_stdout: bool, home: str | None) -> None:
    """Print what a task printed, and its error if it failed (PATHSPEC = FLOW/RUN/STEP[/TASK])."""
    from nbflow.client.objects import Run
    from nbflow.client.pathspec import parse_pathspec
    from nbflow.errors import PathspecError

    spec = parse_pathspec(pathspec)
    if spec.step is None:
        raise PathspecError(f"{pathspec!r} names a run; logs belong to tasks",
                            hint=f"write {pathspec}/STEP or {pathspec}/STEP/TASK")
    run = Run(f"{spec.flow}/{spec.run}", home=_home(home))
    tasks = _tasks(run, spec.step, spec.task)
    for task in tasks:
        if len(tasks) > 1:
            click.secho(f"== {task.pathspec} ({task.status})", bold=True)
        if not only_stderr:
            click.echo(task.stdout, nl=False)
        if not only_stdout:
            click.echo(task.stderr, nl=False, err=True)
            if task.error:
                if task.traceback:
                    click.echo(task.traceback, err=True)
                click.secho(task.error, fg="red", err=True)
        click.echo(f"(log: {task.log_path})", err=True)


@click.command()
@click.argument("pathspec")
@click.argument("name", required=False)
@_home_option
@report_errors
def dump(pathspec: str, name: str | None, home: str | None) -> None:
    """List the artifacts of PATHSPEC, or print the value of artifact NAME."""
    from nbflow.client.objects import Run
    from nbflow.client.pathspec import parse_pathspec
    from nbflow.errors import PathspecError

    spec = parse_pathspec(pathspec)
    if spec.run is None:
        raise PathspecError(f"{pathspec!r} names a flow", hint="write FLOW/RUN[/STEP[/TASK]]")
    run = Run(f"{spec.flow}/{spec.run}", home=_home(home))
    if spec.step is None:
        data = run.data
        if name:
            click.echo(_show_value(_value(data, name, run.pathspec, dir(data))))
            return
        tasks = [t for s in run.steps() for t in s.tasks()]
    else:
        tasks = _tasks(run, spec.step, spec.task)
    if name:
        for task in tasks:
            if len(tasks) > 1:
                click.secho(f"== {task.pathspec}", bold=True)
            click.echo(_show_value(_value(task.data, name, task.pathspec, task.artifacts)))
        return
    for task in tasks:
        click.secho(f"{task.pathspec}  [{task.status}]", bold=True)
        for record in task.artifacts.values():
            size = f"{record.size:,} B" if record.persisted else "not stored"
            shape = f" shape={record.shape}" if record.shape else ""
            click.echo(f"  {record.name:<20} {record.type:<32} {size:>12}{shape}  {record.repr}")
            if not record.persisted:
                click.secho(f"  {'':<20} reason: {record.reason}", fg="yellow")
        for read in task.lineage:
            what = f"{read['read']} {read['name']}" if read["kind"] == "artifact" else read["read"]
            click.echo(f"  read {read['kind']:<9} {what}  (via {read['via']})")


def _show_value(value: Any) -> str:
    if type(value).__module__.startswith("pandas"):
        return str(value.head(20)) + (f"\n[{len(value)} rows]" if len(value) > 20 else "")
    return repr(value)


@click.command()
@click.argument("query")
@_home_option
@report_errors
def sql(query: str, home: str | None) -> None:
    """Run a read-only SQL QUERY over the catalog.

    Tables: runs, tasks, steps, artifacts, params, metrics, tags. A DataFrame artifact
    is a table too: artifact('FLOW/RUN/STEP/TASK', 'NAME')."""
    from nbflow.client.query import sql as run_sql

    click.echo(_table(run_sql(query, home=_home(home))))
