"""From the options of ``nbflow execute`` (CLI or ``%nbflow run``) to what the driver runs."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from nbflow.errors import ParameterError, ResumeError
from nbflow.graph.build import Dag
from nbflow.notebook.spec import NotebookSpec
from nbflow.run.options import RunOptions


def build_run(params: Mapping[str, Any]) -> tuple[NotebookSpec, Dag, RunOptions]:
    """(spec, dag, RunOptions) from ``nbflow execute``'s parsed parameters.

    Reads and validates the notebook and resolves its parameters; raises before
    anything runs.
    """
    from nbflow.notebook.params import resolve_parameters
    from nbflow.run.driver import prepare

    notebook = params["notebook"]
    spec, dag = prepare(notebook)
    resume, from_step = params.get("resume"), params.get("from_step")
    if resume is not None and any(params.get(k) for k in ("params", "raw", "files", "yamls")):
        raise ResumeError("--resume runs with the parameters of the run it resumes; "
                          "-p/-r/-f/-y cannot be combined with it",
                          hint="drop the parameters, or start a fresh run without --resume")
    if from_step is not None and resume is None:
        raise ResumeError("--from needs --resume",
                          hint=f"nbflow execute {notebook} --resume --from {from_step}")
    values = {} if resume is not None else resolve_parameters(
        spec.parameters,
        cli=dict(params.get("params") or ()),
        raw=dict(params.get("raw") or ()),
        yaml_values=yaml_values(params.get("files") or (), params.get("yamls") or ()),
        env=os.environ,
        notebook=notebook,
    )
    known = {f.name for f in dataclasses.fields(RunOptions)} - {"params"}
    options = {k: v for k, v in params.items() if k in known}
    options["max_workers"] = options.get("max_workers") or os.cpu_count() or 1
    return spec, dag, RunOptions(params=values, **options)


def yaml_values(files: tuple[str, ...] | list[str], yamls: tuple[str, ...] | list[str]
                ) -> dict[str, Any]:
    """Parameters from ``-f FILE.yaml`` files and ``-y YAML`` strings, later ones winning."""
    if not files and not yamls:
        return {}  # no yaml import (≈20 ms) for a run without them
    import yaml

    values: dict[str, Any] = {}
    sources = [(_read_text(f), f"-f {f}") for f in files] + [(y, f"-y {y!r}") for y in yamls]
    for text, where in sources:
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ParameterError(f"{where}: not valid YAML{at}: {problem}",
                                 hint="write one `name: value` per line, "
                                      "e.g. -y 'grid: [1, 2]'") from None
        if not isinstance(loaded, dict):
            raise ParameterError(f"{where}: expected a mapping of parameter names to values",
                                 hint="write one `name: value` per line")
        values.update(loaded)
    return values


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"-f {path}: cannot read the parameters file: {exc}") from None
