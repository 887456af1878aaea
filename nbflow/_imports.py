"""Keep the driver's start-up fast.

jsonschema (imported by nbformat) tries ``import rfc3987_syntax`` to offer an "iri"
format checker; that package builds a parser at import and costs 1–2 s of CPU here.
nbformat's schemas never use that format, so nbflow's own processes (the CLI) block
the optional import: jsonschema then simply skips the checker, as it does whenever
the package is not installed.
"""

from __future__ import annotations

import sys

_SLOW_OPTIONAL = ("rfc3987_syntax",)


def skip_slow_optional_imports() -> None:
    for name in _SLOW_OPTIONAL:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
