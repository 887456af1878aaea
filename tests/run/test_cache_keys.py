"""Cache keys that do not depend on the process: sets, frozensets, non-string dict keys, NaN."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nbbuild import make_notebook
from nbtest import ROOT, query

VALUES = (
    "[{f'w{i}' for i in range(40)}, frozenset({'x', 'y', 'z', 'q'}),"
    " {1: 'one', '1': 'uno', (2, 3): {'a', 'b', 'c'}}, float('nan'),"
    " {'n': [{'p', 'q', 'r', 's'}, float('nan'), float('-inf')]}]"
)
PROBE = f"""
import hashlib
from nbflow.run.cache import value_digest
from nbflow.store import canonical
value = {VALUES}
print(value_digest(value), hashlib.sha256(canonical.dumps(value)).hexdigest(),
      hashlib.sha256(repr(value[0]).encode()).hexdigest())
"""


def _in_fresh_interpreter(seed: int) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.split()


def test_digests_and_pickles_agree_across_hash_seeds() -> None:
    results = [_in_fresh_interpreter(seed) for seed in (1, 2, 3, 4)]
    assert len({r[2] for r in results}) > 1  # the seeds really reorder the set
    assert len({r[0] for r in results}) == 1  # parameter digests agree
    assert len({r[1] for r in results}) == 1  # stored bytes agree


def test_canonical_pickle_round_trips() -> None:
    from nbflow.store import canonical

    value = {"s": {3, 1, 2}, "f": frozenset({"a", ("b", 1)}), 4: [{None, 1.5}]}
    again = canonical.load(__import__("io").BytesIO(canonical.dumps(value)))
    assert again == value and type(again["f"]) is frozenset


def notebook(pad: str = "") -> list[object]:
    return [
        "import os",
        ("labels = {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'}",
         ["parameters"]),
        f"%%step start\nvalues = {VALUES}\norder = list(values[0])\n{pad}",
        "%%step use\ncount = len(values[0]) + len(labels)",
    ]


def test_a_set_input_and_parameter_keep_their_key_in_another_process(
        tmp_path: Path, nbflow, home: Path) -> None:
    nb = make_notebook(notebook(), tmp_path / "keys.ipynb")
    first = nbflow("execute", str(nb), env={"PYTHONHASHSEED": "1"})
    assert first.returncode == 0, first.stderr
    # start runs again (its code changed) in processes with another hash seed
    make_notebook(notebook(pad="_pad = 0"), nb)
    second = nbflow("execute", str(nb), env={"PYTHONHASHSEED": "2"})
    assert second.returncode == 0, second.stderr
    status = dict(query(home, "SELECT step, status FROM tasks WHERE run_id = 2"))
    assert status == {"start": "succeeded", "use": "cached"}, second.stderr
    hashes = query(home, "SELECT name, count(DISTINCT hash) FROM artifacts "
                         "WHERE step = 'start' GROUP BY name ORDER BY name")
    assert hashes == [("order", 2), ("values", 1)]  # the kernels' set order did differ
    from nbflow.client.objects import Run

    assert Run("keys/2", home=str(home)).data.count == 48
