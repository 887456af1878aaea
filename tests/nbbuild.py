"""Build small notebooks for tests: ``make_notebook(["x = 1", ("n = 2", ["parameters"])], path)``.

A cell is a code source (``str``), a ``(source, tags)`` pair, or any nbformat cell
(e.g. ``md("# title")``) passed through unchanged. Used by tests across packages:
keep it small and its signatures stable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import nbformat.v4 as v4

Cell = str | tuple[str, list[str]] | Any


def md(text: str) -> Any:
    """A markdown cell (it still counts in the cell numbering)."""
    return v4.new_markdown_cell(text)


def build_notebook(cells: list[Cell], *, kernel_name: str = "python3") -> Any:
    """An in-memory nbformat v4 notebook."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": kernel_name,
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, str):
            nb.cells.append(v4.new_code_cell(cell))
        elif isinstance(cell, tuple):
            source, tags = cell
            nb.cells.append(v4.new_code_cell(source, metadata={"tags": list(tags)}))
        else:
            nb.cells.append(cell)
    return nb


def big_notebook(n_cells: int) -> Any:
    """A generated notebook of ``n_cells`` cells for benchmarks of the reading side:
    setup, parameters, then steps and markdown alternating (half the cells are steps);
    each step reads two earlier steps' outputs, as ``v{i-1}`` and ``v{i//2}``. Pure
    Python, so running it costs a task per step and nothing else."""
    cells: list[Cell] = [
        "import math\n%load_ext nbflow",
        ("scale = 2.0\nn = 10\nlabel = 'bench'", ["parameters"]),
    ]
    steps = 0
    while len(cells) < n_cells:
        if len(cells) % 2 == 0:
            i = steps
            reads = [f"v{j}" for j in (i - 1, i // 2) if 0 <= j < i]
            body = " + ".join(reads) if reads else "n"
            cells.append(
                f"%%step s{i}\n# step {i}: a few lines, as a real step has\n"
                f"values = [x * scale for x in range(int({body}) % 7 + 3)]\n"
                f"v{i} = sum(values) + math.sqrt(len(values))\n"
                f"report{i} = {{'label': label, 'n': len(values), 'v': v{i}}}")
            steps += 1
        else:
            cells.append(md(f"## Notes {len(cells)}\nWhat the next step does."))
    return build_notebook(cells)


def make_notebook(cells: list[Cell], path: str | Path, *, kernel_name: str = "python3") -> Path:
    """Write the notebook to ``path`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(build_notebook(cells, kernel_name=kernel_name), path)
    return path


# Fixture notebooks in tests/notebooks/, regenerated with `python tests/nbbuild.py`.
FIXTURES: dict[str, list[Cell]] = {
    "classifier": [
        "import pandas as pd\nfrom sklearn import datasets\n"
        "from sklearn.model_selection import train_test_split\n%load_ext nbflow",
        (
            "test_size = 0.2\nn_neighbors = 5\ngrid = [0.1, 1.0, 10.0]\ndataset: str = 'iris'",
            ["parameters"],
        ),
        "%%step load\nX, y = getattr(datasets, f'load_{dataset}')(return_X_y=True)\n"
        "X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, random_state=0)",
        "%%step knn\nfrom sklearn.neighbors import KNeighborsClassifier\n"
        "knn = KNeighborsClassifier(n_neighbors).fit(X_train, y_train)",
        "%%step svm\nfrom sklearn.svm import SVC\nsvm = SVC().fit(X_train, y_train)",
        "%%branch sweep --foreach grid --as c\nmodel = SVC(C=c).fit(X_train, y_train)\n"
        "score = model.score(X_test, y_test)",
        "%%step choose\nbest = max(sweep, key=lambda t: t.score)\n"
        "scores = {'knn': knn.score(X_test, y_test), 'svm': svm.score(X_test, y_test)}",
        "scores",
    ],
    "pipeline": [  # pure Python: cheap to execute
        md("# A tiny pipeline"),
        "import math\n%load_ext nbflow",
        ("n = 4\nscale = 2.0\ngrid = [1, 2, 3]\nlabel: str = 'demo'", ["parameters"]),
        "def norm(values):\n    return math.sqrt(sum(v * v for v in values))",
        "%%step load\ndata = list(range(n))",
        "%%step double\ndoubled = [x * scale for x in data]",
        "%%step total\ntotal = sum(data)",
        "%%branch sweep --foreach grid --as k\nvalue = k * total",
        "%%step report\nbest = max(t.value for t in sweep)\nsize = norm(doubled)\n"
        "summary = f'{label}: {best} {size:.2f}'",
        "print(summary)",
    ],
    "mutation": [  # branch bodies that change upstream values in place
        "import copy\n%load_ext nbflow\nregistry = []",
        "%%step start\nd = {'a': 1, 'b': 2, 'c': 3}\nacc = []\nkeys = ['a', 'b', 'c']\n"
        "rows = [[1], [2, 2]]",
        "%%branch drop --foreach keys --as k\ndel d[k]\nacc.append(k)\nregistry.append(k)\n"
        "left = sorted(d)\nsofar = list(acc)\nseen = list(registry)",
        "%%branch grow --foreach rows --as row\nrow.append(0)\nlength = len(row)",
        "%%step after\nlefts = [t.left for t in drop]\nsofars = [t.sofar for t in drop]\n"
        "seens = [t.seen for t in drop]\nsizes = [len(t.d) for t in drop]\n"
        "lengths = [t.length for t in grow]\nremaining = sorted(d)\ncollected = list(acc)\n"
        "rows_after = copy.deepcopy(rows)",
    ],
}


def write_fixtures(directory: str | Path) -> list[Path]:
    return [
        make_notebook(cells, Path(directory) / f"{name}.ipynb") for name, cells in FIXTURES.items()
    ]


if __name__ == "__main__":
    for written in write_fixtures(Path(__file__).parent / "notebooks"):
        print(written)
