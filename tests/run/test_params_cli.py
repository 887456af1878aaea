"""Parameters on the command line, in YAML, in the environment; errors that list the valid ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nbbuild import make_notebook
from nbtest import query

CELLS = [
    ("n = 3\nscale = 2.0\nname = 'a'\nlayers = [1, 2]\nverbose = False\nseed: int", ["parameters"]),
    "%%step s\nresult = (n, scale, name, layers, verbose, seed)",
]


@pytest.fixture
def nb(tmp_path: Path) -> Path:
    return make_notebook(CELLS, tmp_path / "params.ipynb")


def test_cli_env_and_yaml_parameters_are_coerced(nb: Path, tmp_path: Path, nbflow, home: Path) -> None:
    (tmp_path / "p.yaml").write_text("name: from-yaml\nlayers: [8, 9]\n")
    done = nbflow("execute", str(nb), "-p", "n", "5", "-p", "seed", "7", "-f", "p.yaml",
                  "-p", "verbose", "true", env={"NBFLOW_PARAM_SCALE": "0.5", "NBFLOW_PARAM_N": "9"})
    assert done.returncode == 0, done.stderr
    from nbflow.client.objects import Run

    run = Run("params/1", home=str(home))
    assert run.params == {"n": 5, "scale": 0.5, "name": "from-yaml", "layers": [8, 9],
                          "verbose": True, "seed": 7}
    assert run["s"].task.data.result == (5, 0.5, "from-yaml", [8, 9], True, 7)
    types = dict(query(home, "SELECT name, type FROM params"))
    assert types["n"] == "int" and types["scale"] == "float"


def test_raw_parameter_is_not_coerced(nb: Path, nbflow, home: Path) -> None:
    done = nbflow("execute", str(nb), "-p", "seed", "1", "-r", "name", "007")
    assert done.returncode == 0, done.stderr
    value = query(home, "SELECT value FROM params WHERE name = 'name'")[0][0]
    assert json.loads(value) == "007"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-p", "seed", "1", "-p", "nope", "1"], ["nope", "n: int = 3", "scale: float = 2.0"]),
        ([], ["seed", "required"]),
        (["-p", "seed", "1", "-p", "n", "three"], ["n", "int", "three"]),
        (["-p", "seed", "1", "-p", "layers", "[1,"], ["layers", "expects list", "[1,"]),
    ],
)
def test_parameter_errors_list_what_is_valid(nb: Path, nbflow, home: Path, args: list[str],
                                             expected: list[str]) -> None:
    done = nbflow("execute", str(nb), *args)
    assert done.returncode == 2, done.stderr
    for text in expected:
        assert text in done.stderr, (text, done.stderr)
    assert "Traceback" not in done.stderr
    assert not (home / "catalog.duckdb").exists()
