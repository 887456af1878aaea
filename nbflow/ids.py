"""Identifier types shared by every stage. Plain strings/ints at run time."""

from __future__ import annotations

from typing import NewType

FlowName = NewType("FlowName", str)  # the notebook's stem, e.g. "classifier"
RunId = NewType("RunId", int)  # per flow, increasing: classifier/1, classifier/2, ...
StepName = NewType("StepName", str)
TaskIndex = NewType("TaskIndex", int)  # 0 for a step; 0..n-1 for a branch's tasks
ObjectHash = NewType("ObjectHash", str)  # hex content hash of an artifact's bytes
CacheKey = NewType("CacheKey", str)
