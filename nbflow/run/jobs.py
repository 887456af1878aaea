"""Tasks as the scheduler sees them, and the plans sent into their kernels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbflow.errors import ArtifactUnavailable, TaskFailed
from nbflow.graph.build import Dag
from nbflow.ids import StepName
from nbflow.notebook.spec import StepSpec
from nbflow.store.manifest import TaskManifest
from nbflow.store.serialize import ArtifactRecord


@dataclass
class Job:
    """One task to run: a step (index 0) or one element of a branch."""

    step: StepSpec
    index: int
    load_plan: dict[str, Any]
    persist_plan: dict[str, Any]
    element: Any = None  # a short, JSON-able description of the foreach element
    attempt: int = 0
    parts: Any = None  # cache.KeyParts
    key: str | None = None  # parts.key(), computed once
    queued_at: float | None = None  # epoch seconds: handed to a worker

    @property
    def label(self) -> str:
        return f"{self.step.name}/{self.index}"


@dataclass
class StepResults:
    """Finished manifests of one step, by task index."""

    manifests: dict[int, TaskManifest] = field(default_factory=dict)

    def ordered(self) -> list[TaskManifest]:
        return [self.manifests[i] for i in sorted(self.manifests)]


def input_specs(
    dag: Dag, step: StepSpec, done: dict[StepName, StepResults]
) -> list[dict[str, Any]]:
    """Load instructions for every input ``step`` reads from another step."""
    specs = []
    for name, binding in sorted(dag.bindings[step.name].items()):
        if binding.step is None or binding.source not in ("step", "branch"):
            continue
        if step.kind == "branch" and name == step.magic.foreach and name not in step.body_reads:
            continue  # each task gets one element (element_spec), not the whole iterable
        producer = done[binding.step]
        if binding.source == "branch":
            specs.append(_join_spec(name, binding.step, producer))
        else:
            specs.append(_artifact_spec(step, name, binding.step, producer.manifests[0]))
    return specs


def _artifact_spec(
    step: StepSpec, name: str, producer: StepName, manifest: TaskManifest
) -> dict[str, Any]:
    record = manifest.artifact(name)
    if record is None:
        raise TaskFailed(
            f"reads {name!r}, but step {producer!r} did not bind it when it ran "
            "(it is assigned only on a path that did not execute)",
            cell=step.cell,
            step=step.name,
            hint=f"make sure step {producer!r} always assigns {name!r}",
        )
    if not record.persisted:
        raise ArtifactUnavailable(
            f"reads {name!r}, which step {producer!r} could not store: {record.reason}",
            cell=step.cell,
            step=step.name,
            hint=f"make {name!r} serializable (cloudpickle) in step {producer!r}, "
            f"or compute it inside step {step.name!r}",
        )
    return {"name": name, "kind": "artifact", "producer": producer, "record": record.to_dict()}


def _join_spec(name: str, producer: StepName, results: StepResults) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "join",
        "producer": producer,
        "tasks": [_task_records(m) for m in results.ordered()],
    }


def _task_records(m: TaskManifest) -> dict[str, Any]:
    return {"index": m.index, "records": {a.name: a.to_dict() for a in m.artifacts}}


def element_spec(
    step: StepSpec, index: int, source: str, elements: list[Any], producer: StepName | None
) -> dict[str, Any]:
    """The loop variable of branch task ``index``: a stored element or a namespace."""
    item = elements[index]
    if isinstance(item, ArtifactRecord):
        return {"name": step.magic.as_, "kind": "element", "producer": producer,
                "record": item.to_dict()}
    assert isinstance(item, TaskManifest)
    return {"name": step.magic.as_, "kind": "namespace", "producer": producer,
            "index": item.index, "records": _task_records(item)["records"]}


def describe_element(item: Any) -> str:
    if isinstance(item, ArtifactRecord):
        return item.repr
    assert isinstance(item, TaskManifest)
    return f"{item.step}[{item.index}]"
