"""Fork safety of the zygote: counting native threads, and the thread-pool clamps.

``fork()`` copies only the calling thread. A pool thread that a library started at import
(OpenBLAS's workers, Arrow's jemalloc background thread) is missing in the child while the
library's bookkeeping says it exists: at best wasted state, at worst a deadlock on a lock the
vanished thread held. So the zygote preloads a module only if the process still has exactly
one thread afterwards.

Two libraries start threads at import on a stock scientific stack, and both can be told not
to without changing what a task computes:

* OpenBLAS (numpy, scipy): ``OPENBLAS_NUM_THREADS=1`` while the zygote imports. The
  child then sets every preloaded OpenBLAS back to the thread count a freshly started
  kernel would have chosen from *its* environment, so a forked task runs BLAS with the same
  parallelism (and the same results) as a spawned one. This needs threadpoolctl (a
  scikit-learn dependency); without it nothing is clamped and numpy is simply not preloaded.
* jemalloc inside pyarrow (imported by pandas): ``background_thread:false``. Arrow's
  default memory pool is mimalloc, so the jemalloc setting only changes when a jemalloc
  pool (if a task opts into it) returns freed pages: inline instead of from a thread.

The clamps exist only in the zygote's environment: a child replaces its whole environment
with the one the launcher asked for before the kernel starts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

# OpenBLAS reads these in this order at load time; the first valid one wins.
_OPENBLAS_VARS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")

_openblas: Any = None  # threadpoolctl selection of the OpenBLAS copies the zygote loaded


def native_thread_count() -> int:
    """OS threads of this process (``threading`` alone misses threads started in C)."""
    try:
        native = len(os.listdir("/proc/self/task"))
    except OSError:  # no procfs (macOS): only Python-level threads are visible
        native = 1
    return max(native, threading.active_count())


def import_clamps(environ: Mapping[str, str]) -> dict[str, str]:
    """Environment overrides the zygote applies before preloading anything."""
    clamps: dict[str, str] = {}
    try:
        import threadpoolctl  # noqa: F401  (needed in the child to undo the clamp)
    except ImportError:
        pass
    else:
        clamps["OPENBLAS_NUM_THREADS"] = "1"
    je_conf = environ.get("JE_ARROW_MALLOC_CONF")
    clamps["JE_ARROW_MALLOC_CONF"] = (
        f"{je_conf},background_thread:false" if je_conf else "background_thread:false"
    )
    return clamps


def remember_clamped_pools() -> None:
    """Zygote, after preloading: find the OpenBLAS copies now (the scan costs ~15 ms)."""
    global _openblas
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    selection = ThreadpoolController().select(internal_api="openblas")
    _openblas = selection if len(selection.lib_controllers) else None


def has_clamped_pools() -> bool:
    return _openblas is not None


def restore_thread_pools(environ: Mapping[str, str]) -> None:
    """Child: give preloaded OpenBLAS the thread count a fresh process would have chosen."""
    if _openblas is None:
        return
    _openblas.limit(limits=_openblas_threads(environ))


def _openblas_threads(environ: Mapping[str, str]) -> int:
    for name in _OPENBLAS_VARS:
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def reseed_after_fork() -> None:
    """Children of one zygote must not share random streams.

    CPython reseeds ``random`` itself at fork; numpy's legacy global generator (behind
    ``np.random.rand`` and every ``random_state=None`` in scikit-learn) was seeded once
    in the zygote and would repeat the same numbers in every task.
    """
    import sys

    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        np_random.seed()
