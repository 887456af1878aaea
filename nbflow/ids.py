"""Identifier types shared by every stage. Plain strings/ints at run time."""

from __future__ import annotations

from typing import NewType

FlowName = NewType("FlowName", str)  # the notebook's stem, e.g. "classifier"
StepName = NewType("StepName", str)
ObjectHash = NewType("ObjectHash", str)  # hex content hash of an artifact's bytes
