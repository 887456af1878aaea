"""What a user asked of one ``nbflow execute``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunOptions:
    params: dict[str, Any] = field(default_factory=dict)  # already resolved and typed
    max_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    max_num_splits: int = 100
    no_cache: bool = False
    tags: tuple[str, ...] = ()
    output: str | None = None  # where to write the executed notebook (also kept with the run)
    home: str | None = None
    catalog: str | None = None
    resume: str | None = None  # run id to resume ("" = latest run of this notebook)
    from_step: str | None = None
    quiet: bool = False
    backend: str | None = None  # a backend name (nbflow.backends); None = $NBFLOW_BACKEND or local
    scheduler: str | None = None  # the dask backend's cluster: tcp://HOST:PORT or local:N
