"""One error tree for nbflow.

Every error says what happened, where (notebook, cell number, step) and what to
do next. Errors cross process boundaries (kernels, workers), so each one pickles
with its structured fields intact.
"""

from __future__ import annotations

from typing import Any


class NbflowError(Exception):
    """Base class. ``cell`` is the 1-based position of the cell in the notebook.
    ``cli_exit`` is what the CLI exits with (see ``nbflow --help``)."""

    cli_exit = 2  # bad input or usage

    def __init__(
        self,
        message: str,
        *,
        notebook: str | None = None,
        cell: int | None = None,
        step: str | None = None,
        hint: str | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.notebook = notebook
        self.cell = cell
        self.step = step
        self.hint = hint
        self.fields = fields

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    @property
    def where(self) -> str:
        parts = []
        if self.notebook:
            parts.append(self.notebook)
        if self.cell is not None:
            parts.append(f"cell {self.cell}")
        if self.step:
            parts.append(f"step {self.step!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = dict(
            notebook=self.notebook, cell=self.cell, step=self.step, hint=self.hint, **self.fields
        )
        return (_rebuild, (type(self), self.message, kwargs))


def _rebuild(cls: type[NbflowError], message: str, kwargs: dict[str, Any]) -> NbflowError:
    return cls(message, **kwargs)


class NotebookError(NbflowError):
    """The notebook cannot be read or a cell is malformed."""


class MagicArgumentError(NotebookError):
    """A ``%%step``/``%%branch``/``%nbflow`` line has bad arguments."""


class DagError(NotebookError):
    """The steps do not form a valid DAG (duplicate names, cycles, unknown --after, ...)."""


class ValidationError(NotebookError):
    """Several problems found while validating a notebook, reported together."""

    def __init__(self, problems: list[NbflowError], *, notebook: str | None = None) -> None:
        lines = [f"{len(problems)} problem(s) found before running:"]
        lines += [f"  - {p}".replace("\n", "\n    ") for p in problems]
        super().__init__("\n".join(lines), notebook=None, problems=problems)
        self.problems = problems
        self.fields["problems"] = problems

    def __reduce__(self) -> tuple[Any, ...]:
        return (ValidationError, (self.problems,))


class ParameterError(NbflowError):
    """A run parameter is unknown, missing or cannot be coerced to its type."""


class StoreError(NbflowError):
    """The artifact store cannot read or write an object."""


class ArtifactUnavailable(NbflowError):
    """A step reads an artifact that its producer could not persist."""


class CatalogError(NbflowError):
    """The DuckDB catalog cannot be read or written."""

    cli_exit = 3


class QueryError(CatalogError):
    """A query given to ``nbflow sql`` / ``sql()`` is not valid SQL for the catalog."""

    cli_exit = 2


class HomeError(StoreError):
    """The nbflow home is missing, not a folder, or not writable for a writer."""

    cli_exit = 3


class PathspecError(NbflowError):
    """A pathspec (FLOW/RUN[/STEP[/TASK]]) names nothing recorded."""


class TaskFailed(NbflowError):
    """A task's code raised. Fields: ``index``, ``ename``, ``evalue``, ``traceback``."""


class ResumeError(NbflowError):
    """``--resume``/``--from`` cannot be honoured."""


class BackendError(NbflowError):
    """The task backend cannot be used: unknown name, unreachable cluster, version mismatch."""
