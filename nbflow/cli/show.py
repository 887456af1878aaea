from __future__ import annotations

import click

from nbflow.cli.main import report_errors


@click.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "dot"]), default="text",
              show_default=True, help="text for people, json for programs, dot for graphviz.")
@report_errors
def show(notebook: str, fmt: str) -> None:
    """Print NOTEBOOK's DAG: steps, edges, inputs and outputs of each (nothing runs)."""
    from nbflow.graph import render
    from nbflow.graph.build import build_dag
    from nbflow.notebook.reader import read_notebook

    dag = build_dag(read_notebook(notebook))
    renderer = {"text": render.render_text, "json": render.render_json, "dot": render.render_dot}
    click.echo(renderer[fmt](dag))
