"""The per-task namespace a join sees: ``sweep[i].score``.

One type serves both worlds: a headless join gets namespaces whose artifacts load
lazily from the store on first attribute access; the live ``%%branch`` magic
builds them eagerly from the values the body bound. Pickling always materializes,
so a namespace stored as part of another artifact (``best = max(sweep, ...)``)
needs no store to be read back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

Loader = Callable[[str], Any]


class Namespace:
    """Attributes are the names one branch task bound (plus its loop variable)."""

    __slots__ = ("_label", "_values", "_lazy", "_loader")

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        label: str = "",
        lazy: frozenset[str] | set[str] = frozenset(),
        loader: Loader | None = None,
    ) -> None:
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_values", dict(values or {}))
        object.__setattr__(self, "_lazy", set(lazy))
        object.__setattr__(self, "_loader", loader)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        lazy = object.__getattribute__(self, "_lazy")
        if name in lazy:
            value = object.__getattribute__(self, "_loader")(name)
            values[name] = value
            lazy.discard(name)
            return value
        label = object.__getattribute__(self, "_label")
        known = ", ".join(sorted(self._names())) or "nothing"
        raise AttributeError(f"{label or 'namespace'} has no name {name!r} (it bound: {known})")

    def __setattr__(self, name: str, value: Any) -> None:
        self._values[name] = value
        self._lazy.discard(name)

    def _names(self) -> set[str]:
        return set(self._values) | set(self._lazy)

    def __dir__(self) -> list[str]:
        return sorted(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names()))

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def _asdict(self) -> dict[str, Any]:
        """Every value, loading the lazy ones."""
        return {name: getattr(self, name) for name in sorted(self._names())}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Namespace):
            return NotImplemented
        return self._asdict() == other._asdict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for name in sorted(self._names()):
            if name in self._values:
                text = repr(self._values[name])
                parts.append(f"{name}={text if len(text) <= 40 else text[:37] + '...'}")
            else:
                parts.append(f"{name}=<not loaded>")
        return f"{self._label or 'Namespace'}({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self._label, self._asdict()))


def _rebuild(label: str, values: dict[str, Any]) -> Namespace:
    return Namespace(values, label=label)
