"""``%nbflow checkout FLOW/RUN/STEP[/TASK] [--outputs]``: a headless task's inputs, live.

To debug a task that failed headless, load exactly what it read into the notebook's
namespace, then run (or edit and run) its cell. Each input resolves as the run resolved
it: the nearest earlier step (in cell order) that outputs the name, else a parameter of
the run. A branch task also gets its loop variable, the element it ran for. Setup names
(imports, helpers) are code, not artifacts: run the setup cells for those.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import PathspecError


@dataclass
class Checkout:
    pathspec: str
    status: str
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> where it came from
    missing: dict[str, str] = field(default_factory=dict)  # name -> why not loaded

    def report(self) -> str:
        lines = [f"checked out {self.pathspec} ({self.status}): {len(self.values)} name(s)"]
        lines += [f"  {name:<16} {source}" for name, source in self.sources.items()]
        lines += [f"  {name:<16} NOT LOADED: {why}" for name, why in self.missing.items()]
        return "\n".join(lines)


def checkout(pathspec: str, *, outputs: bool = False, home: Any = None,
             defined: set[str] | frozenset[str] = frozenset()) -> Checkout:
    """Load the inputs (and with ``outputs`` the artifacts) of one task; ``defined`` are
    names the namespace already has (setup names are not reported missing then)."""
    from nbflow.client.objects import Run
    from nbflow.client.pathspec import parse_pathspec

    spec = parse_pathspec(pathspec)
    if spec.run is None or spec.step is None:
        raise PathspecError(f"{pathspec!r} names no step", hint="write FLOW/RUN/STEP[/TASK], "
                            "e.g. classifier/3/sweep/1")
    run = Run(f"{spec.flow}/{spec.run}", home=home)
    steps = run.dag()
    entry = next((s for s in steps if s["step"] == spec.step), None)
    if entry is None:
        raise PathspecError(f"run {run.pathspec} has no step {spec.step!r}",
                            hint="steps: " + ", ".join(s["step"] for s in steps))
    index = spec.task or 0
    task_path = f"{run.pathspec}/{spec.step}/{index}"
    tasks = {t.index: t for t in run[spec.step].tasks()}
    result = Checkout(task_path, tasks[index].status if index in tasks else "never started")
    params = run.params
    for name in entry["inputs"]:
        producer = _producer(steps, entry["cell"], name)
        if producer is not None and producer["kind"] == "branch":
            _load(result, name, f"from {producer['step']} (its tasks, joined)",
                  lambda p=producer["step"]: _join(run, p))
        elif producer is not None:
            _load(result, name, f"from {producer['step']}/0",
                  lambda n=name, p=producer["step"]: getattr(run[p].task.data, n))
        elif name in params:
            result.values[name] = params[name]
            result.sources[name] = f"parameter = {params[name]!r}"
        elif name not in defined:
            result.missing[name] = "not an artifact or parameter: run the setup cells"
    if entry["kind"] == "branch" and entry["foreach"] in result.values:
        items = list(result.values[entry["foreach"]])
        if index >= len(items):
            raise PathspecError(f"{task_path}: --foreach {entry['foreach']} has only "
                                f"{len(items)} element(s)", hint="task indexes start at 0")
        result.values[entry["as_var"]] = items[index]
        result.sources[entry["as_var"]] = f"{entry['foreach']}[{index}] (the loop variable)"
    if outputs:
        _outputs(result, run, spec.step, index, tasks)
    return result


def _join(run: Any, step: str) -> list[Any]:
    """A branch's list of per-task namespaces, each artifact loaded on first access."""
    from nbflow.kernel.namespace import Namespace

    joined = []
    for task in run[step].tasks():
        data = task.data
        joined.append(Namespace(label=f"{step}[{task.index}]", lazy=set(dir(data)),
                                loader=functools.partial(getattr, data)))
    return joined


def _producer(steps: list[dict[str, Any]], cell: int, name: str) -> dict[str, Any] | None:
    """The step whose output a read of ``name`` in ``cell`` resolves to, as the run did."""
    from nbflow.graph.resolve import last_producers

    exported = ((s["cell"], out, s) for s in steps
                for out in ([s["step"]] if s["kind"] == "branch" else s["outputs"]))
    return last_producers(exported, before=cell).get(name)


def _load(result: Checkout, name: str, source: str, read: Any) -> None:
    try:
        result.values[name] = read()
        result.sources[name] = source
    except Exception as exc:  # e.g. the producer failed: say which name and why
        result.missing[name] = f"{source}: {exc}"


def _outputs(result: Checkout, run: Any, step: str, index: int, tasks: dict[int, Any]) -> None:
    if index not in tasks:
        result.missing["(outputs)"] = "the task never started, so it has no outputs"
        return
    task = tasks[index]
    records = task.artifacts
    if not records:
        result.missing["(outputs)"] = f"the task recorded no artifacts (it {task.status})"
    for name in records:
        _load(result, name, f"output of {step}/{index}", lambda n=name: getattr(task.data, n))
