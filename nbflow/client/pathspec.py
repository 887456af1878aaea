"""``FLOW/RUN[/STEP[/TASK]]``, the address of everything nbflow records."""

from __future__ import annotations

from dataclasses import dataclass

from nbflow.errors import PathspecError


@dataclass(frozen=True)
class Pathspec:
    flow: str
    run: int | None = None
    step: str | None = None
    task: int | None = None

    def __str__(self) -> str:
        parts = [self.flow, self.run, self.step, self.task]
        return "/".join(str(p) for p in parts if p is not None)


def parse_pathspec(text: str) -> Pathspec:
    parts = [p for p in text.strip().strip("/").split("/") if p]
    if not parts or len(parts) > 4:
        raise PathspecError(
            f"{text!r} is not a pathspec",
            hint="write FLOW, FLOW/RUN, FLOW/RUN/STEP or FLOW/RUN/STEP/TASK, e.g. classifier/3/sweep/0",
        )
    run = _int(parts[1], "run id", text) if len(parts) > 1 else None
    task = _int(parts[3], "task index", text) if len(parts) > 3 else None
    return Pathspec(parts[0], run, parts[2] if len(parts) > 2 else None, task)


def _int(value: str, what: str, text: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PathspecError(
            f"{text!r}: the {what} must be a number, not {value!r}",
            hint="runs are numbered per flow (nbflow runs lists them); tasks by index from 0",
        ) from None
