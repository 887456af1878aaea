"""The one parser for ``%%step`` / ``%%branch`` lines.

Shared by the live IPython magics (which receive the argument string) and by
headless reading (which sees the whole first line of the cell). argparse does
the tokenised option matching; it is never allowed to print or exit: every
problem becomes a :class:`MagicArgumentError` that names the cell.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import keyword
import re
import shlex
from typing import Any, NoReturn, cast

from nbflow.errors import MagicArgumentError
from nbflow.ids import StepName
from nbflow.notebook.spec import MagicArgs, StepKind

KINDS: tuple[StepKind, ...] = ("step", "branch")
_MAGIC_LINE = re.compile(r"^%%(?P<kind>[A-Za-z_]\w*)(?P<rest>\s.*)?$", re.DOTALL)
_USAGE: dict[str, str] = {
    "step": "%%step NAME [--after STEP ...] [--no-cache] [--snapshot PATH ...] "
    "[--kernel KERNELSPEC] [--retry N] [--timeout SECONDS] [--resources \"GPU=1,MEMORY=8e9\"]",
    "branch": "%%branch NAME --foreach ITERABLE_NAME [--as VAR] [same options as %%step]",
}


class _ArgparseProblem(Exception):
    """What argparse would have printed before exiting."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgparseProblem(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _ArgparseProblem(message or "invalid arguments")


def magic_kind(line: str) -> StepKind | None:
    """``"step"``/``"branch"`` if ``line`` opens a step cell, else None."""
    match = _MAGIC_LINE.match(line.strip())
    if match and match.group("kind") in KINDS:
        return cast(StepKind, match.group("kind"))
    return None


@functools.lru_cache(maxsize=4096)  # MagicArgs is immutable; errors are never cached
def parse_magic_line(
    line: str, *, cell: int | None = None, notebook: str | None = None
) -> MagicArgs:
    """Parse a full first line such as ``%%branch sweep --foreach grid --as c``."""
    match = _MAGIC_LINE.match(line.strip())
    kind = match.group("kind") if match else None
    if match is None or kind not in KINDS:
        raise MagicArgumentError(
            f"{line.strip()!r} is not a %%step or %%branch line",
            cell=cell,
            notebook=notebook,
            hint=f"start the cell with: {_USAGE['step']}",
        )
    return parse_magic_args(kind, match.group("rest") or "", cell=cell, notebook=notebook)


def parse_magic_args(
    kind: str, arg_string: str, *, cell: int | None = None, notebook: str | None = None
) -> MagicArgs:
    """Parse the arguments after ``%%step`` / ``%%branch`` (what a cell magic receives)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'step' or 'branch', not {kind!r}")

    def fail(message: str, hint: str | None = None, step: str | None = None) -> NoReturn:
        raise MagicArgumentError(
            f"%%{kind}: {message}",
            cell=cell,
            notebook=notebook,
            step=step,
            hint=hint or f"usage: {_USAGE[kind]}",
        )

    try:
        tokens = shlex.split(arg_string, comments=True)
    except ValueError as exc:
        fail(f"cannot split the arguments ({exc})", "close the quote or remove it")
    if not tokens or tokens[0].startswith("-"):
        fail("missing the step name", f"name the {kind} first: {_USAGE[kind]}")
    parser = _build_parser()
    try:
        ns, extra = parser.parse_known_args(tokens)
    except _ArgparseProblem as exc:
        fail(*_explain_argparse(str(exc)), step=tokens[0])
    if ns.foreach is not None and not ns.foreach.isidentifier():
        fail(f"--foreach takes the name of an iterable, not an expression ({ns.foreach!r})",
             "bind it first, in a setup cell or an earlier step (e.g. items = list(range(3))), "
             f"then write %%branch {tokens[0]} --foreach items", step=tokens[0])
    if extra:
        fail(*_explain_extra(extra, parser), step=tokens[0])
    try:
        return _to_magic_args(cast(StepKind, kind), ns)
    except _ArgparseProblem as exc:
        message, _, hint = str(exc).partition("\n")
        fail(message, hint or None, step=tokens[0])


@functools.cache  # parsing never changes the parser; building one costs ~1 ms
def _build_parser() -> _Parser:
    parser = _Parser(prog="%%step", add_help=False, allow_abbrev=False)
    parser.add_argument("name")
    parser.add_argument("--after", nargs="+", action="extend", default=[])
    parser.add_argument("--no-cache", dest="no_cache", action="store_true")
    parser.add_argument("--snapshot", nargs="+", action="extend", default=[])
    parser.add_argument("--kernel")
    parser.add_argument("--retry")
    parser.add_argument("--timeout")
    parser.add_argument("--foreach")
    parser.add_argument("--as", dest="as_")
    parser.add_argument("--resources")
    return parser


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for action in parser._actions for o in action.option_strings]


def _explain_argparse(message: str) -> tuple[str, str | None]:
    found = re.match(r"argument (\S+?)(?:/\S+)?: expected (.*)", message)
    if found:
        option, expected = found.groups()
        return f"{option} expects {expected}", f"write {option} VALUE"
    found = re.match(r"the following arguments are required: (.*)", message)
    if found:
        return f"missing {found.group(1)}", None
    return message, None


def _explain_extra(extra: list[str], parser: argparse.ArgumentParser) -> tuple[str, str]:
    options = _options(parser)
    unknown = [t for t in extra if t.startswith("-")]
    if unknown:
        option = unknown[0].split("=", 1)[0]
        close = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "options are: " + ", ".join(options)
        return f"unknown option {option}", hint
    return (
        f"unexpected argument {extra[0]!r}",
        "a cell has one name; options that take several values (--after, --snapshot) "
        "must come right before them",
    )


def _to_magic_args(kind: StepKind, ns: argparse.Namespace) -> MagicArgs:
    name = _identifier(ns.name, f"{kind} name")
    _check_kind_options(kind, ns)
    return MagicArgs(
        kind=kind,
        name=StepName(name),
        after=tuple(dict.fromkeys(StepName(_identifier(a, "--after")) for a in ns.after)),
        no_cache=bool(ns.no_cache),
        snapshot=tuple(dict.fromkeys(ns.snapshot)),
        kernel=_kernel(ns.kernel),
        retry=_retry(ns.retry),
        timeout=_timeout(ns.timeout),
        foreach=_identifier(ns.foreach, "--foreach") if kind == "branch" else None,
        as_=_identifier(ns.as_, "--as") if ns.as_ is not None else "item",
        resources=_resources(ns.resources),
    )


def _check_kind_options(kind: StepKind, ns: argparse.Namespace) -> None:
    if kind == "step" and (ns.foreach is not None or ns.as_ is not None):
        option = "--foreach" if ns.foreach is not None else "--as"
        _problem(f"{option} only applies to %%branch", f"use %%branch {ns.name} --foreach NAME")
    if kind == "branch" and ns.foreach is None:
        _problem(
            "missing --foreach",
            f"name the iterable to fan out over: %%branch {ns.name} --foreach NAME [--as VAR]",
        )


def _problem(message: str, hint: str) -> NoReturn:
    raise _ArgparseProblem(f"{message}\n{hint}")


def _identifier(value: Any, what: str) -> str:
    text = str(value)
    if keyword.iskeyword(text):
        _problem(f"{what} {text!r} is a Python keyword",
                 f"pick another name (e.g. {text}_step or my_{text})")
    if not text.isidentifier():
        _problem(
            f"{what} {text!r} is not a valid Python identifier",
            "use letters, digits and underscores, not starting with a digit (e.g. train_model)",
        )
    return text


def _kernel(value: str | None) -> str | None:
    if value is not None and not value.strip():
        _problem("--kernel is empty", "name a kernelspec, see `jupyter kernelspec list`")
    return value


def _retry(value: str | None) -> int:
    if value is None:
        return 0
    try:
        retry = int(value)
    except ValueError:
        retry = -1
    if retry < 0:
        _problem(f"--retry {value!r} is not a whole number >= 0", "e.g. --retry 2")
    return retry


def _timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        timeout = float(value)
    except ValueError:
        timeout = float("nan")
    if not timeout > 0 or timeout == float("inf"):
        _problem(f"--timeout {value!r} is not a number of seconds > 0", "e.g. --timeout 600")
    return timeout


def _resources(value: str | None) -> tuple[tuple[str, float], ...]:
    """``"GPU=1,MEMORY=8e9"`` → ``(("GPU", 1.0), ("MEMORY", 8e9))``."""
    if value is None:
        return ()
    found: dict[str, float] = {}
    for part in value.split(","):
        name, sep, amount = part.strip().partition("=")
        try:
            number = float(amount)
        except ValueError:
            number = float("nan")
        if not sep or not name.strip() or not number >= 0 or number == float("inf"):
            _problem(f"--resources {value!r}: {part.strip()!r} is not NAME=AMOUNT",
                     'e.g. --resources "GPU=1,MEMORY=8e9"')
        found[name.strip()] = number
    return tuple(found.items())
