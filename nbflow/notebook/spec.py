"""What a notebook says, as data: the product of ``nbflow.notebook`` and the input of ``graph``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from nbflow.ids import FlowName, StepName

StepKind = Literal["step", "branch"]


class _Required:
    """Sentinel default of a parameter declared by annotation only (``dataset: str``)."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class MagicArgs:
    """The parsed first line of a ``%%step`` / ``%%branch`` cell."""

    kind: StepKind
    name: StepName
    after: tuple[StepName, ...] = ()
    no_cache: bool = False
    snapshot: tuple[str, ...] = ()
    kernel: str | None = None
    retry: int = 0
    timeout: float | None = None
    foreach: str | None = None  # branch only: the iterable's name
    as_: str = "item"  # branch only: the loop variable
    resources: tuple[tuple[str, float], ...] = ()  # Dask worker resources, e.g. (("GPU", 1.0),)


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any  # REQUIRED when declared by annotation only
    type: str  # "int", "float", "str", "bool", "list", "dict", "NoneType", or an annotation's text
    cell: int

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class SetupCell:
    cell: int  # 1-based position in the notebook
    source: str
    is_parameters: bool = False


@dataclass(frozen=True)
class StepSpec:
    name: StepName
    kind: StepKind
    cell: int  # 1-based position in the notebook
    source: str  # the body, without the magic line
    magic: MagicArgs
    outputs: frozenset[str]  # names the body binds at top level (incl. republished mutations)
    inputs: frozenset[str]  # names read before being bound (builtins excluded); branch: + foreach
    mutated: frozenset[str] = frozenset()  # inputs the body likely mutates in place (also outputs)
    # What the body itself reads: a branch's inputs add its --foreach name, which each
    # task receives one element of (as --as), not whole.
    body_inputs: frozenset[str] | None = None

    @property
    def body_reads(self) -> frozenset[str]:
        return self.inputs if self.body_inputs is None else self.body_inputs

    @cached_property  # read many times per analysis (edges, checks, warnings, keys)
    def public_outputs(self) -> frozenset[str]:
        return frozenset(n for n in self.outputs if not n.startswith("_"))


@dataclass(frozen=True)
class NotebookSpec:
    path: str
    flow: FlowName
    kernel_name: str  # the notebook's kernelspec name (metadata.kernelspec.name), "python3" if absent
    setup: tuple[SetupCell, ...]
    parameters: tuple[Parameter, ...]
    steps: tuple[StepSpec, ...]
    setup_outputs: frozenset[str] = frozenset()  # names bound by setup cells (not parameters)
    setup_inputs: frozenset[str] = frozenset()  # names setup cells read (params they depend on)
    content_hash: str = ""
    scratch_cells: tuple[int, ...] = field(default=())  # code cells after the first step, skipped headless

    def step(self, name: str) -> StepSpec:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)
