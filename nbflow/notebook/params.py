"""Final parameter values from papermill-style sources: ``-p``, ``-r``, ``-f``/``-y``, env.

Precedence: command line (``-p``/``-r``) > YAML (``-f``/``-y``) > ``NBFLOW_PARAM_<NAME>``
environment variables > the default in the parameters cell.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from nbflow.errors import ParameterError
from nbflow.notebook.spec import REQUIRED, Parameter

ENV_PREFIX = "NBFLOW_PARAM_"
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_NONE = {"none", "null"}
_ALIASES = {"List": "list", "Dict": "dict", "Tuple": "tuple", "Set": "set", "None": "NoneType"}


def resolve_parameters(
    params: Sequence[Parameter],
    *,
    cli: Mapping[str, str] = _EMPTY,
    raw: Mapping[str, str] = _EMPTY,
    yaml_values: Mapping[str, Any] = _EMPTY,
    env: Mapping[str, str] = os.environ,
    notebook: str | None = None,
) -> dict[str, Any]:
    """Every parameter's final value; all problems are reported in one ParameterError."""
    by_name = {p.name: p for p in params}
    problems = _unknown(by_name, [*cli, *raw, *yaml_values])
    values: dict[str, Any] = {}
    missing = []  # required and given no value (a value of the wrong type is its own problem)
    for param in params:
        try:
            value = _value(param, cli, raw, yaml_values, env)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if value is REQUIRED:
            missing.append(param)
        else:
            values[param.name] = value
    if missing:
        listed = ", ".join(f"{p.name} ({p.type})" for p in missing)
        problems.append(f"missing required parameter(s): {listed}")
    if problems:
        raise ParameterError(
            _summary(problems),
            notebook=notebook,
            hint=_usage(params),
            problems=problems,
        )
    return values


def _summary(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems with the parameters:" + "".join(
        f"\n  - {p}" for p in problems
    )


def describe_parameter(param: Parameter) -> str:
    """``test_size: float = 0.2`` or ``dataset: str (required)``."""
    if param.required:
        return f"{param.name}: {param.type} (required)"
    return f"{param.name}: {param.type} = {param.default!r}"


def _usage(params: Sequence[Parameter]) -> str:
    if not params:
        return "this notebook has no parameters (tag a cell 'parameters' to declare some)"
    listed = "; ".join(describe_parameter(p) for p in params)
    return f"valid parameters: {listed}. Pass them as -p NAME VALUE"


def _unknown(by_name: Mapping[str, Parameter], given: list[str]) -> list[str]:
    problems = []
    for name in dict.fromkeys(given):
        if name not in by_name:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{suggestion}")
    return problems


def _value(
    param: Parameter,
    cli: Mapping[str, str],
    raw: Mapping[str, str],
    yaml_values: Mapping[str, Any],
    env: Mapping[str, str],
) -> Any:
    name = param.name
    if name in raw:
        return raw[name]
    if name in cli:
        return coerce_text(param, cli[name], source="-p")
    if name in yaml_values:
        return check_value(param, yaml_values[name])
    env_name = ENV_PREFIX + name.upper()
    if env_name in env:
        return coerce_text(param, env[env_name], source=env_name)
    return param.default


def coerce_text(param: Parameter, text: str, *, source: str = "-p") -> Any:
    """A command-line string converted to the parameter's type (ValueError if it cannot be)."""
    for kind in _alternatives(param):
        try:
            return _FROM_TEXT.get(kind, _any_from_text)(text)
        except (ValueError, TypeError):
            continue
    raise ValueError(
        f"parameter {param.name!r} ({source}) expects {param.type}, got {text!r}" + _example(param)
    )


def check_value(param: Parameter, value: Any) -> Any:
    """An already-typed value (YAML) checked against the type; ints widen to float."""
    for kind in _alternatives(param):
        check = _FROM_VALUE.get(kind)
        if check is None:
            return value
        try:
            return check(value)
        except (ValueError, TypeError):
            continue
    raise ValueError(
        f"parameter {param.name!r} (YAML) expects {param.type}, got "
        f"{type(value).__name__} {value!r}" + _example(param)
    )


def _example(param: Parameter) -> str:
    if param.required:
        return ""
    return f" (the default is {param.default!r})"


def _alternatives(param: Parameter) -> list[str]:
    """``"int | None"`` -> ``["int", "NoneType"]``; ``"list[float]"`` -> ``["list"]``."""
    text = param.type.strip()
    optional = re.fullmatch(r"(?:typing\.)?Optional\[(.*)\]", text)
    union = re.fullmatch(r"(?:typing\.)?Union\[(.*)\]", text)
    if optional:
        parts = [optional.group(1), "None"]
    elif union:
        parts = _split_top(union.group(1), ",")
    else:
        parts = _split_top(text, "|")
    kinds = [_base(p) for p in parts]
    if kinds == ["NoneType"]:  # declared as `x = None`: anything goes
        kinds.append("Any")
    # "None" first, so that "none"/"null" are not read as the string "None"
    return sorted(kinds, key=lambda k: k != "NoneType")


def _split_top(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _base(annotation: str) -> str:
    name = annotation.strip().split("[", 1)[0].strip().strip("'\"").removeprefix("typing.")
    return _ALIASES.get(name, name)


def _int_from_text(text: str) -> int:
    return int(text.strip())


def _bool_from_text(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(text)


def _none_from_text(text: str) -> None:
    if text.strip().lower() not in _NONE:
        raise ValueError(text)


def _json_of(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = json.loads(text)
        if kind in (tuple, set) and isinstance(value, list):
            return kind(value)
        if not isinstance(value, kind):
            raise TypeError(text)
        return value

    return parse


def _any_from_text(text: str) -> Any:
    return text


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


_FROM_TEXT: dict[str, Callable[[str], Any]] = {
    "int": _int_from_text,
    "float": lambda t: float(t.strip()),
    "bool": _bool_from_text,
    "str": str,
    "list": _json_of(list),
    "dict": _json_of(dict),
    "tuple": _json_of(tuple),
    "set": _json_of(set),
    "NoneType": _none_from_text,
    "Any": _json_or_text,
    "object": _json_or_text,
}


def _exact(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            raise TypeError(value)
        return value

    return check


def _float_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


def _sequence_of(kind: type) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, (list, tuple, set)):
            raise TypeError(value)
        return kind(value)

    return check


def _none_value(value: Any) -> None:
    if value is not None:
        raise TypeError(value)


_FROM_VALUE: dict[str, Callable[[Any], Any]] = {
    "int": _exact(int),
    "float": _float_value,
    "bool": _exact(bool),
    "str": _exact(str),
    "list": _sequence_of(list),
    "tuple": _sequence_of(tuple),
    "set": _sequence_of(set),
    "dict": _exact(dict),
    "NoneType": _none_value,
}
