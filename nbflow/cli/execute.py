from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

from nbflow.cli.main import EXIT_SIGINT, EXIT_SIGTERM, report_errors
from nbflow.run.arguments import execute_options


@click.command()
@execute_options
@click.option("--events", "events_to", default=None, hidden=True, metavar="FILE|-",
              help="Also write every task event as a JSON line to FILE (- for stdout).")
@report_errors
def execute(notebook: str, params: tuple[tuple[str, str], ...], raw: tuple[tuple[str, str], ...],
            files: tuple[str, ...], yamls: tuple[str, ...], max_workers: int | None,
            max_num_splits: int, no_cache: bool, resume: str | None, from_step: str | None,
            tags: tuple[str, ...], output: str | None, home: str | None,
            catalog: str | None, backend: str | None, scheduler: str | None,
            quiet: bool, events_to: str | None) -> None:
    """Run NOTEBOOK headless: each %%step/%%branch task in its own kernel, in parallel where
    steps share no data. Exit code 0 when every step succeeded, 1 when a step failed,
    2 when the notebook or the arguments are invalid (nothing ran), 3 when the home or
    catalog is unusable, 130/143 when cancelled by SIGINT/SIGTERM."""
    from nbflow.run.driver import execute as run_notebook
    from nbflow.run.request import build_run

    signals = _Cancellation()  # first: a signal is lost while SIGINT is still ignored
    spec, dag, options = build_run(click.get_current_context().params)
    with _event_log(events_to) as events:
        try:
            result = run_notebook(spec, dag, options, observers=events)
        except KeyboardInterrupt:
            _cancelled(events, signals)
        except Exception:
            if signals.received is None:
                raise
            # DuckDB turns the interrupt into its own "Query interrupted" error
            _cancelled(events, signals)
        for log in events:
            log.run_finished(result.summary.status, result.summary.step_status,
                             result.notebook_path)
    _print_summary(result, notebook)
    if result.summary.status == "cancelled":
        sys.exit(signals.exit_code())
    sys.exit(0 if result.ok else 1)


class _Cancellation:
    """SIGINT and SIGTERM both cancel the run cleanly (the scheduler's KeyboardInterrupt
    path). SIGINT's handler is installed explicitly: a driver started as a background job
    of a script inherits SIGINT ignored. A second signal while cancelling is ignored, so
    stopping the kernels and recording the run is not cut short."""

    def __init__(self) -> None:
        import signal

        self.received: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            return
        self.received = signum
        raise KeyboardInterrupt

    def exit_code(self) -> int:
        import signal

        return EXIT_SIGTERM if self.received == signal.SIGTERM else EXIT_SIGINT


@contextlib.contextmanager
def _event_log(target: str | None) -> Iterator[tuple[Any, ...]]:
    """The ``--events`` observer (none without the option)."""
    if target is None:
        yield ()
        return
    from nbflow.run.eventlog import EventLog

    if target == "-":
        yield (EventLog(sys.stdout),)
        return
    with open(target, "a", encoding="utf-8") as stream:
        yield (EventLog(stream),)


def _cancelled(events: tuple[Any, ...], signals: _Cancellation) -> NoReturn:
    for log in events:
        log.run_finished("cancelled")
    click.secho("cancelled", fg="yellow", err=True)
    sys.exit(signals.exit_code())


def _print_summary(result: Any, notebook: str) -> None:
    summary = result.summary
    failed: dict[str, set[int]] = {}
    for outcome in summary.outcomes:
        if outcome.error is not None:
            failed.setdefault(outcome.job.step.name, set()).add(outcome.job.index)
    colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow"}.get(summary.status)
    click.echo("", err=True)
    for step, status in summary.step_status.items():
        ok = len(summary.done[step].manifests) if step in summary.done else 0
        bad = len(failed.get(step, set()) - set(summary.done[step].manifests if step in summary.done else ()))
        tasks = f"{ok} task(s) ok" + (f", {bad} failed" if bad else "")
        click.echo(f"  {step:<20} {status:<10} {tasks}", err=True)
    click.secho(f"run {result.pathspec} {summary.status}", fg=colour, bold=True, err=True)
    click.echo(f"executed notebook: {result.notebook_path}", err=True)
    if summary.reused:
        parts = [f"{n} {status}" for status, n in sorted(summary.reused.items())]
        click.echo(f"reused without a kernel: {', '.join(parts)}", err=True)
    for name in summary.split_kernels:
        click.echo(f"started a kernel to run the setup cells for the elements of "
                   f"--foreach {name}", err=True)
    if summary.status != "succeeded":
        for error in summary.errors:
            click.secho(f"error: {str(error).splitlines()[0]}", fg="red", err=True)
        # A backend failure (a lost scheduler or worker) is not the notebook's fault.
        backend = all(getattr(e, "role", None) == "backend" for e in summary.errors)
        resume = f"nbflow execute {notebook} --resume {result.run_id}"
        if summary.status == "cancelled" and not summary.errors:
            click.echo(f"continue with: {resume}", err=True)
        else:
            what = "fix what the error says" if backend and summary.errors else "fix the notebook"
            click.echo(f"{what}, then continue with: {resume}", err=True)
