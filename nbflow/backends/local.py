"""The ``local`` backend: task kernels on this machine (today's executor, unchanged)."""

from __future__ import annotations

from typing import Any

from nbflow.run.executor import TaskExecutor
from nbflow.run.options import RunOptions

_EXECUTOR_ARGS = ("spec", "home", "launcher_factory", "params", "flow", "run_id", "cwd")


class LocalBackend:
    name = "local"

    def __init__(self, options: RunOptions) -> None:
        self.options = options

    def connect(self) -> None:
        pass

    def describe(self) -> str:
        return "local kernels"

    def slots(self, requested: int) -> int:
        return requested

    def executor(self, **context: Any) -> TaskExecutor:
        return TaskExecutor(**{k: context[k] for k in _EXECUTOR_ARGS})

    def close(self) -> None:
        pass
