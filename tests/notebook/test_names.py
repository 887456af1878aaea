"""Name analysis of a cell body: outputs, inputs (in execution order) and mutations."""

from __future__ import annotations

import pytest

from nbflow.errors import NotebookError
from nbflow.notebook.names import MUTATING_METHODS, analyze, imported_names, to_python

# (source, outputs, inputs) -- mutations are tested separately
CASES = [
    ("x = 1", {"x"}, set()),
    ("x = x + 1", {"x"}, {"x"}),
    ("y = 1\nz = y", {"y", "z"}, set()),
    ("a, (b, *c) = d", {"a", "b", "c"}, {"d"}),
    ("a = b = f(x)", {"a", "b"}, {"f", "x"}),
    ("n: int = 5", {"n"}, set()),
    ("n: Thing", set(), {"Thing"}),
    ("import os.path\nimport numpy as np\nfrom a.b import c as d, e", {"os", "np", "d", "e"}, set()),
    ("def f(a, *args, k=default, **kw):\n    loc = a + g\n    return loc", {"f"}, {"default", "g"}),
    ("@deco\nclass A(Base):\n    attr = 1\n    other = attr", {"A"}, {"deco", "Base"}),
    ("for i, v in enumerate(xs):\n    total = v", {"i", "v", "total"}, {"xs"}),
    ("for i in range(n):\n    total = total + i", {"i", "total"}, {"n", "total"}),
    ("with open(p) as fh, lock:\n    data = fh.read()", {"fh", "data"}, {"p", "lock"}),
    ("while cond:\n    w = 1\nelse:\n    e = 2", {"w", "e"}, {"cond"}),
    ("if flag:\n    a = 1\nelse:\n    b = 2\nc = a", {"a", "b", "c"}, {"flag"}),
    ("try:\n    t = risky()\nexcept ValueError as err:\n    msg = str(err)\nfinally:\n    f = 1",
     {"t", "msg", "f"}, {"risky"}),
    ("if (n := len(xs)) > 3:\n    big = n", {"n", "big"}, {"xs"}),
    ("ys = [v * k for v in vals if v > lim]", {"ys"}, {"k", "vals", "lim"}),
    ("d = {k: v for k, v in pairs}\ns = {w for w in ws}\ng = sum(q for q in qs)",
     {"d", "s", "g"}, {"pairs", "ws", "qs"}),
    ("m = [[c for c in row] for row in grid]", {"m"}, {"grid"}),
    ("best = max(sweep, key=lambda t: t.score)", {"best"}, {"sweep"}),
    ("f = lambda x, y=dflt: x + y + z", {"f"}, {"dflt", "z"}),
    ("print(len(x), display, get_ipython, In, Out)", set(), {"x"}),
    ("_private = 1\ny = _hidden", {"_private", "y"}, {"_hidden"}),
    ("temp = load()\nres = temp * 2\ndel temp", {"res"}, {"load"}),
    ("del old", set(), {"old"}),
    ("match cmd:\n    case Point(x=px, y=0):\n        pass\n    case [a, *rest]:\n        pass\n"
     "    case {'k': v, **kw}:\n        pass\n    case Color.RED as r:\n        pass",
     {"px", "a", "rest", "v", "kw", "r"}, {"cmd", "Point", "Color"}),
    # functions run when called: names they read may be bound later in the cell
    ("def f():\n    return g() + h\ndef g():\n    return 1\nh = 2\nout = f()", {"f", "g", "h", "out"}, set()),
    ("def f(n):\n    return f(n - 1)", {"f"}, set()),
    ("def outer():\n    v = 1\n    def inner():\n        return v + w\n    return inner", {"outer"}, {"w"}),
    ("class A:\n    k = base\n    def m(self):\n        return k", {"A"}, {"base", "k"}),
    ("def setx():\n    global x\n    x = 1\nsetx()\nprint(x)", {"setx", "x"}, set()),
    ("def inc():\n    global counter\n    counter += 1", {"inc", "counter"}, {"counter"}),
    ("counter = 0\ndef inc():\n    global counter\n    counter += 1", {"inc", "counter"}, set()),
    ("def f():\n    nonlocal_free = 1\n    def g():\n        nonlocal nonlocal_free\n"
     "        nonlocal_free = 2\n    return g", {"f"}, set()),
    ("[y := f(x) for x in data]", {"y"}, {"f", "data"}),
    ("async def fetch():\n    async with s as c:\n        async for r in c:\n            yield r",
     {"fetch"}, {"s"}),
]  # fmt: skip


@pytest.mark.parametrize(("source", "outputs", "inputs"), CASES)
def test_outputs_and_inputs(source: str, outputs: set[str], inputs: set[str]) -> None:
    info = analyze(source)
    assert set(info.outputs) == outputs
    assert set(info.inputs) == inputs


@pytest.mark.parametrize(
    ("source", "outputs", "inputs"),
    [
        ("%time x = 1\ny = x", {"x", "y"}, set()),
        ("%%time\nx = slow()", {"x"}, {"slow"}),
        ("!ls\nfiles = !ls {folder}", {"files"}, set()),
        ("%matplotlib inline\nplt_ok = 1", {"plt_ok"}, set()),
        ("thing?", set(), set()),
    ],
)  # fmt: skip
def test_ipython_syntax(source: str, outputs: set[str], inputs: set[str]) -> None:
    info = analyze(source)
    assert set(info.outputs) == outputs
    assert set(info.inputs) == inputs


# (source, mutated) -- a mutated name is also an input and an output
MUTATIONS = [
    ("model.fit(X, y)\ndone = 1", {"model"}),
    ("model.fit(X, y)", {"model"}),  # last line, but fit is a known mutator
    ("lst.append(1)", {"lst"}),
    ("x = lst.pop()", {"lst"}),
    ("d.update(a=1)\nseen.add(3)", {"d", "seen"}),
    ("df.drop(columns=['a'], inplace=True)", {"df"}),
    ("df.head()\nprint(1)", {"df"}),  # result discarded: may change df
    ("df.head()", set()),  # the cell's last expression is displayed, not discarded
    ("for m in ms:\n    acc.record(m)", {"acc"}),  # inside the last statement: discarded
    ("shown = df.head()", set()),
    ("x[0] = 1", {"x"}),
    ("a.b.c = 2", {"a"}),
    ("frames['train'].cols = ['a']", {"frames"}),
    ("del e[1]\ndel o.attr", {"e", "o"}),
    ("d += 1", {"d"}),
    ("m[k] += 1", {"m"}),
    ("p, q[0] = 1, 2", {"q"}),
    ("x = []\nx.append(1)\nx[0] = 2", set()),  # created here: a plain output
    ("df.groupby('a').sum()\nz = 1", set()),  # a method of a new object
    ("print(x)\nz = 1", set()),
    ("def f():\n    results.append(1)\n    model.fit(X)\n    mine = []\n    mine.append(2)",
     {"results", "model"}),
    ("ys = [acc.append(v) for v in vs]", {"acc"}),
    ("def add():\n    global seen\n    seen.add(1)", {"seen"}),
]  # fmt: skip


@pytest.mark.parametrize(("source", "mutated"), MUTATIONS)
def test_mutations(source: str, mutated: set[str]) -> None:
    info = analyze(source)
    assert set(info.mutated) == mutated
    assert info.mutated <= info.inputs
    assert info.mutated <= info.outputs


def test_modules_are_never_mutated() -> None:
    source = "plt.plot(x)\npd.options.display.max_rows = 5\nnp.random.seed(0)\nz = 1"
    info = analyze(source, modules={"plt", "pd", "np"})
    assert info.mutated == frozenset()
    assert info.outputs == {"z"}
    assert info.inputs == {"plt", "pd", "np", "x"}


def test_environment_names_need_an_explicit_mutation() -> None:
    source = "logger.info('hi')\nresults.append(1)\nconfig['k'] = 2\nz = 1"
    info = analyze(source, environment={"logger", "results", "config"})
    assert info.mutated == {"results", "config"}


@pytest.mark.parametrize("method", sorted(MUTATING_METHODS))
def test_every_known_mutator_republishes_its_object(method: str) -> None:
    # The result is used, so only the list can say that the call mutates `x`.
    assert analyze(f"y = x.{method}(1)", environment={"x"}).mutated == {"x"}


def test_a_method_whose_result_is_used_is_not_a_mutation() -> None:
    assert analyze("y = x.get(1)\nz = x.copy()", environment={"x"}).mutated == set()
    assert {"pop", "update", "append", "fit"} <= MUTATING_METHODS  # DESIGN's examples


def test_syntax_error_names_cell_step_and_line() -> None:
    with pytest.raises(NotebookError) as info:
        analyze("x = 1\ny = (\n", cell=4, step="load", notebook="nb.ipynb", line_offset=1)
    error = info.value
    assert (error.cell, error.step, error.notebook) == (4, "load", "nb.ipynb")
    assert error.line == 3
    assert "line 3" in error.message and error.hint


def test_syntax_error_line_counts_leading_blank_lines() -> None:
    with pytest.raises(NotebookError) as info:
        analyze("\n\nx = = 1")
    assert info.value.line == 3


def test_to_python_keeps_line_numbers() -> None:
    source = "\n%time a = 1\n!ls\nb = 2"
    assert to_python(source).splitlines()[3] == "b = 2"


def test_imported_names() -> None:
    source = "import numpy as np\nif True:\n    from os import path\ndef f():\n    import json"
    assert imported_names(source) == {"np", "path"}
    assert imported_names("x = (") == frozenset()
