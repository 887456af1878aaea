"""Task backends: where a ready task runs, found by name.

The scheduler stays nbflow's orchestrator; a backend only turns each ready task into
a :class:`~nbflow.run.executor.TaskOutcome`. ``local`` runs kernels on this machine,
``dask`` submits the task to a Dask distributed cluster. A third party adds one with
an entry point in the ``nbflow.backends`` group naming a :class:`Backend` class; the
built-ins work without installed entry points.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any, Protocol

from nbflow.errors import BackendError

if TYPE_CHECKING:
    from nbflow.run.executor import TaskExecutor
    from nbflow.run.options import RunOptions

GROUP = "nbflow.backends"
DEFAULT = "local"
BUILTIN = {
    "local": "nbflow.backends.local:LocalBackend",
    "dask": "nbflow.backends.dask:DaskBackend",
}


class Backend(Protocol):
    """One ``nbflow execute``'s way of running tasks. Made with the run's options."""

    name: str

    def connect(self) -> None:
        """Reach the machinery (cluster, credentials); raise :class:`BackendError` before
        anything is recorded when it cannot be used."""

    def describe(self) -> str:
        """A few words for the run's first progress line."""

    def slots(self, requested: int) -> int:
        """How many tasks to have in flight at once."""

    def executor(self, **context: Any) -> TaskExecutor:
        """The run's executor; ``context`` holds the ``TaskExecutor`` arguments plus the
        run's ``progress`` and ``recorder``."""

    def close(self) -> None:
        """Release what ``connect`` acquired (idempotent)."""


def backend_name(options: RunOptions) -> str:
    return options.backend or os.environ.get("NBFLOW_BACKEND") or DEFAULT


def available() -> dict[str, str]:
    """Every backend name → ``module:Class``: the built-ins, then installed entry points."""
    from importlib.metadata import entry_points

    found = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def open_backend(options: RunOptions) -> Backend:
    """The backend the run asked for, constructed (not yet connected)."""
    name = backend_name(options)
    # A built-in name wins over any entry point: no need to scan them (≈10 ms) for it.
    known = BUILTIN if name in BUILTIN else available()
    target = known.get(name)
    if target is None:
        raise BackendError(f"--backend {name!r}: no such backend",
                           hint=f"known backends: {', '.join(sorted(known))}; a third-party one "
                                f"is an entry point in the {GROUP!r} group")
    module_name, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"--backend {name!r}: {target} cannot be loaded: {exc}",
                           hint="install the package that provides it") from None
    backend: Backend = cls(options)
    return backend
