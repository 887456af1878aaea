"""The one %%step/%%branch line parser: options, defaults, and errors that name the cell."""

from __future__ import annotations

import pytest

from nbflow.errors import MagicArgumentError
from nbflow.notebook.magics import magic_kind, parse_magic_args, parse_magic_line
from nbflow.notebook.spec import MagicArgs


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("%%step load", MagicArgs("step", "load")),
        ("%%step   load   ", MagicArgs("step", "load")),
        ("%%step b --after a", MagicArgs("step", "b", after=("a",))),
        ("%%step d --after a b --after c", MagicArgs("step", "d", after=("a", "b", "c"))),
        ("%%step d --after a a", MagicArgs("step", "d", after=("a",))),
        ("%%step s --no-cache", MagicArgs("step", "s", no_cache=True)),
        ("%%step s --snapshot data.csv 'my file.txt'",
         MagicArgs("step", "s", snapshot=("data.csv", "my file.txt"))),
        ("%%step s --kernel py38", MagicArgs("step", "s", kernel="py38")),
        ("%%step s --kernel=py38", MagicArgs("step", "s", kernel="py38")),
        ("%%step s --retry 2 --timeout 1.5", MagicArgs("step", "s", retry=2, timeout=1.5)),
        ("%%step s --retry 0", MagicArgs("step", "s")),
        ("%%step s  # a comment", MagicArgs("step", "s")),
        ("%%branch sweep --foreach grid", MagicArgs("branch", "sweep", foreach="grid")),
        ("%%branch sweep --foreach grid --as c --retry 2",
         MagicArgs("branch", "sweep", foreach="grid", as_="c", retry=2)),
        ("%%branch sweep --as c --foreach grid --after load",
         MagicArgs("branch", "sweep", after=("load",), foreach="grid", as_="c")),
    ],
)  # fmt: skip
def test_parses(line: str, expected: MagicArgs) -> None:
    assert parse_magic_line(line) == expected


def test_argument_string_alone_is_what_the_live_magic_gets() -> None:
    assert parse_magic_args("branch", "s --foreach xs --as x") == MagicArgs(
        "branch", "s", foreach="xs", as_="x"
    )


@pytest.mark.parametrize(
    ("line", "message", "hint"),
    [
        ("%%step load --retries 2", "unknown option --retries", "did you mean --retry?"),
        ("%%step load --afetr a", "unknown option --afetr", "did you mean --after?"),
        ("%%step load --zzz", "unknown option --zzz", "options are: --after"),
        ("%%step load -h", "unknown option -h", "options are"),
        ("%%step load extra", "unexpected argument 'extra'", "--after"),
        ("%%step", "missing the step name", "%%step NAME"),
        ("%%step --no-cache", "missing the step name", "%%step NAME"),
        ("%%step 2fast", "'2fast' is not a valid Python identifier", "letters, digits"),
        ("%%step class", "'class' is a Python keyword", "class_step"),
        ("%%step a-b", "'a-b' is not a valid Python identifier", "letters"),
        ("%%step s --after", "--after expects at least one argument", "--after VALUE"),
        ("%%step s --after 1x", "--after '1x' is not a valid Python identifier", "letters"),
        ("%%step s --retry", "--retry expects one argument", "--retry VALUE"),
        ("%%step s --retry two", "--retry 'two' is not a whole number >= 0", "--retry 2"),
        ("%%step s --retry -1", "--retry '-1' is not a whole number >= 0", "--retry 2"),
        ("%%step s --retry 1.5", "--retry '1.5' is not a whole number", "--retry 2"),
        ("%%step s --timeout 0", "--timeout '0' is not a number of seconds > 0", "600"),
        ("%%step s --timeout -3", "--timeout '-3' is not a number of seconds > 0", "600"),
        ("%%step s --timeout soon", "--timeout 'soon' is not a number", "600"),
        ("%%step s --timeout nan", "--timeout 'nan' is not a number", "600"),
        ("%%step s --kernel ''", "--kernel is empty", "kernelspec"),
        ("%%step s --foreach grid", "--foreach only applies to %%branch", "%%branch s"),
        ("%%step s --as c", "--as only applies to %%branch", "%%branch s"),
        ("%%branch b --foreach (i for i in range(3))",
         "--foreach takes the name of an iterable, not an expression ('(i')",
         "%%branch b --foreach items"),
        ("%%branch s", "missing --foreach", "--foreach NAME"),
        ("%%branch s --foreach 'a.b'", "--foreach takes the name of an iterable, not an expression ('a.b')",
         "--foreach items"),
        ("%%branch s --foreach g --as 'x y'", "--as 'x y' is not a valid", "letters"),
        ("%%step s --snapshot 'open", "cannot split the arguments", "quote"),
        ("%%stepx s", "is not a %%step or %%branch line", "%%step NAME"),
        ("%%time", "is not a %%step or %%branch line", "%%step NAME"),
    ],
)  # fmt: skip
def test_errors_name_the_cell_and_give_a_hint(line: str, message: str, hint: str) -> None:
    with pytest.raises(MagicArgumentError) as info:
        parse_magic_line(line, cell=7, notebook="nb.ipynb")
    error = info.value
    assert message in error.message
    assert error.hint is not None and hint in error.hint
    assert error.cell == 7 and error.notebook == "nb.ipynb"
    assert "\n" not in error.message
    assert str(error).startswith("nb.ipynb, cell 7")


def test_errors_name_the_step_when_known() -> None:
    with pytest.raises(MagicArgumentError) as info:
        parse_magic_line("%%step train --retry x", cell=3)
    assert info.value.step == "train"
    assert "cell 3, step 'train'" in str(info.value)


def test_argparse_never_prints_or_exits(capsys: pytest.CaptureFixture[str]) -> None:
    for line in ("%%step", "%%step s --help", "%%step s --retry", "%%step s --bad x y"):
        with pytest.raises(MagicArgumentError):
            parse_magic_line(line)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        parse_magic_args("stepx", "s")


@pytest.mark.parametrize(
    ("line", "kind"),
    [("%%step a", "step"), ("  %%branch b --foreach x", "branch"), ("%%step", "step"),
     ("%%stepper a", None), ("%step a", None), ("# %%step a", None), ("x = 1", None)],
)  # fmt: skip
def test_magic_kind(line: str, kind: str | None) -> None:
    assert magic_kind(line) == kind
