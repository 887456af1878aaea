"""Keep the driver's start-up fast.

jsonschema (imported by nbformat) tries ``import rfc3987_syntax`` to offer an "iri"
format checker; that package builds a parser at import and costs 1–2 s of CPU here.
nbformat's schemas never use that format, so nbflow's own processes (the CLI) block
the optional import: jsonschema then simply skips the checker, as it does whenever
the package is not installed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

_SLOW_OPTIONAL = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    for name in _SLOW_OPTIONAL:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


_LOCK = threading.Lock()


@contextlib.contextmanager
def without_slow_optional_imports() -> Iterator[None]:
    """The same, only while the body imports: for a process that is not nbflow's own (a
    Dask worker), where user code may import the package later."""
    with _LOCK:
        hidden = [name for name in _SLOW_OPTIONAL if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
