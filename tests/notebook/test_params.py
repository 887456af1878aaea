"""Parameter values from -p / -r / YAML / environment, coerced to each parameter's type."""

from __future__ import annotations

from typing import Any

import pytest

from nbflow.errors import ParameterError
from nbflow.notebook.params import resolve_parameters
from nbflow.notebook.spec import REQUIRED, Parameter

PARAMS = (
    Parameter("test_size", 0.2, "float", 2),
    Parameter("n", 5, "int", 2),
    Parameter("grid", [0.1, 1.0], "list", 2),
    Parameter("opts", {"a": 1}, "dict", 2),
    Parameter("flag", False, "bool", 2),
    Parameter("label", "x", "str", 2),
    Parameter("dataset", REQUIRED, "str", 2),
)
DEFAULTS = {"test_size": 0.2, "n": 5, "grid": [0.1, 1.0], "opts": {"a": 1}, "flag": False,
            "label": "x"}  # fmt: skip


def resolve(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("env", {})
    cli = {"dataset": "iris", **kwargs.pop("cli", {})}
    return resolve_parameters(PARAMS, cli=cli, **kwargs)


def test_defaults_fill_in() -> None:
    assert resolve() == {**DEFAULTS, "dataset": "iris"}


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("test_size", "0.5", 0.5), ("test_size", "1", 1.0), ("n", " 7 ", 7),
        ("grid", "[1, 2.5]", [1, 2.5]), ("opts", '{"b": [1]}', {"b": [1]}),
        ("flag", "true", True), ("flag", "Yes", True), ("flag", "1", True),
        ("flag", "FALSE", False), ("flag", "no", False), ("flag", "0", False),
        ("label", "42", "42"), ("dataset", "wine", "wine"),
    ],
)  # fmt: skip
def test_cli_values_are_coerced_to_the_default_type(name: str, text: str, value: Any) -> None:
    result = resolve(cli={name: text})[name]
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    ("type_text", "text", "value"),
    [
        ("int", "3", 3), ("list[float]", "[1.5]", [1.5]), ("typing.List[int]", "[1]", [1]),
        ("dict[str, int]", '{"a": 1}', {"a": 1}), ("int | None", "null", None),
        ("int | None", "4", 4), ("Optional[float]", "2", 2.0), ("Union[int, str]", "x", "x"),
        ("tuple", "[1, 2]", (1, 2)), ("Path", "/tmp/x", "/tmp/x"), ("NoneType", "5", 5),
        ("NoneType", "text", "text"), ("NoneType", "None", None),
    ],
)  # fmt: skip
def test_annotation_types(type_text: str, text: str, value: Any) -> None:
    param = Parameter("p", REQUIRED, type_text, 1)
    assert resolve_parameters([param], cli={"p": text}, env={}) == {"p": value}


def test_raw_values_are_not_coerced() -> None:
    assert resolve(raw={"n": "7", "label": "[1]"})["n"] == "7"


def test_yaml_values_are_checked_and_ints_widen_to_float() -> None:
    result = resolve(yaml_values={"test_size": 1, "grid": [3], "flag": True, "n": 9})
    assert result["test_size"] == 1.0 and isinstance(result["test_size"], float)
    assert (result["grid"], result["flag"], result["n"]) == ([3], True, 9)


@pytest.mark.parametrize(
    ("name", "value"),
    [("n", 1.5), ("n", True), ("test_size", "0.1"), ("label", 3), ("grid", {"a": 1}),
     ("flag", 1), ("opts", [1])],
)  # fmt: skip
def test_yaml_values_of_the_wrong_type(name: str, value: Any) -> None:
    with pytest.raises(ParameterError) as info:
        resolve(yaml_values={name: value})
    assert f"parameter {name!r} (YAML) expects" in info.value.message
    assert repr(value) in info.value.message


def test_environment_variables() -> None:
    env = {"NBFLOW_PARAM_N": "11", "NBFLOW_PARAM_TEST_SIZE": "0.3", "NBFLOW_PARAM_NOPE": "1"}
    result = resolve(env=env)
    assert (result["n"], result["test_size"]) == (11, 0.3)


def test_precedence_cli_then_yaml_then_env_then_default() -> None:
    env = {"NBFLOW_PARAM_N": "1", "NBFLOW_PARAM_TEST_SIZE": "0.3", "NBFLOW_PARAM_LABEL": "e"}
    result = resolve(cli={"n": "3"}, yaml_values={"n": 2, "test_size": 0.4}, env=env)
    assert (result["n"], result["test_size"], result["label"], result["flag"]) == (
        3,
        0.4,
        "e",
        False,
    )
    assert resolve(raw={"n": "r"}, yaml_values={"n": 2})["n"] == "r"


def test_unknown_parameter_lists_the_valid_ones() -> None:
    with pytest.raises(ParameterError) as info:
        resolve(cli={"tset_size": "0.1"}, notebook="nb.ipynb")
    error = info.value
    assert "unknown parameter 'tset_size' (did you mean 'test_size'?)" in error.message
    assert error.notebook == "nb.ipynb"
    assert "test_size: float = 0.2" in (error.hint or "")
    assert "dataset: str (required)" in (error.hint or "")


def test_unknown_yaml_key_and_no_parameters_at_all() -> None:
    with pytest.raises(ParameterError, match="unknown parameter 'zzz'"):
        resolve(yaml_values={"zzz": 1})
    with pytest.raises(ParameterError) as info:
        resolve_parameters([], cli={"x": "1"}, env={})
    assert "no parameters" in (info.value.hint or "")


def test_missing_required_parameters_are_listed() -> None:
    params = [*PARAMS, Parameter("seed", REQUIRED, "int", 2)]
    with pytest.raises(ParameterError) as info:
        resolve_parameters(params, env={})
    assert "missing required parameter(s): dataset (str), seed (int)" in info.value.message
    assert "-p NAME VALUE" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [("n", "five", "expects int"), ("n", "1.5", "expects int"), ("test_size", "big", "expects float"),
     ("flag", "maybe", "expects bool"), ("grid", "[1,", "expects list"), ("grid", '{"a": 1}', "expects list"),
     ("opts", "[1]", "expects dict")],
)  # fmt: skip
def test_failed_coercion_says_the_type_and_the_value(name: str, text: str, expected: str) -> None:
    with pytest.raises(ParameterError) as info:
        resolve(cli={name: text})
    assert f"parameter {name!r} (-p) {expected}, got {text!r}" in info.value.message


def test_env_coercion_failure_names_the_variable() -> None:
    with pytest.raises(ParameterError, match="NBFLOW_PARAM_N"):
        resolve(env={"NBFLOW_PARAM_N": "x"})


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ParameterError) as info:
        resolve_parameters(PARAMS, cli={"n": "x", "bogus": "1"}, yaml_values={"flag": 3}, env={})
    message = info.value.message
    assert message.startswith("4 problems")
    for part in ("unknown parameter 'bogus'", "'n' (-p)", "'flag' (YAML)", "missing required"):
        assert part in message
    assert len(info.value.problems) == 4


def test_a_required_parameter_given_a_bad_value_is_not_also_missing() -> None:
    with pytest.raises(ParameterError) as info:
        resolve_parameters(PARAMS, yaml_values={"dataset": 3}, env={})
    assert info.value.problems == ["parameter 'dataset' (YAML) expects str, got int 3"]


def test_default_environment_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBFLOW_PARAM_N", "21")
    assert resolve_parameters(PARAMS, cli={"dataset": "d"})["n"] == 21
