"""Files a step reads are in its cache key, found in its code; unresolvable reads are shown."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from nbbuild import make_notebook
from nbtest import query, run_nbflow


def statuses(home: Path, run_id: int) -> dict[str, str]:
    return dict(query(home, "SELECT step, status FROM tasks WHERE run_id = ?", [run_id]))


def _notebook(path: Path) -> Path:
    return make_notebook([
        "import json\nimport pandas as pd\nimport numpy as np\nfrom pathlib import Path\n"
        "LABELS = 'data/labels.txt'\nlabels = open(LABELS).read().split()",
        ("dataset = 'train'\nweights = 'data/w.npy'", ["parameters"]),
        "%%step load\ndf = pd.read_csv(f'data/{dataset}.csv')",
        "%%step cfg\ncfg = json.load(open('config.json'))\nw = np.load(weights)",
        "%%step note\ntext = Path('notes.md').read_text()",
        "%%step plain\nx = 1",
        "%%step dyn\nname = 'config' + '.json'\nraw = open(name).read()",
    ], path)


def _data(root: Path) -> None:
    import numpy as np

    (root / "data").mkdir()
    (root / "data" / "train.csv").write_text("a,b\n1,2\n")
    (root / "data" / "other.csv").write_text("a,b\n5,6\n7,8\n")
    (root / "data" / "labels.txt").write_text("x y\n")
    np.save(root / "data" / "w.npy", np.arange(3))
    (root / "config.json").write_text(json.dumps({"k": 1}))
    (root / "notes.md").write_text("hello")


def test_a_changed_file_reruns_only_its_readers(tmp_path: Path, nbflow, home: Path) -> None:
    _data(tmp_path)
    for written in (tmp_path / "data").iterdir():  # a file written in the last 2 s is
        past = time.time() - 60                     # hashed every time: age them
        os.utime(written, (past, past))
    nb = _notebook(tmp_path / "files.ipynb")
    # The CLI runs elsewhere: relative paths are the notebook's, as its tasks run there.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = run_nbflow("execute", str(nb), home=home, cwd=elsewhere)
    assert first.returncode == 0, first.stderr
    second = nbflow("execute", str(nb))
    assert second.returncode == 0, second.stderr
    assert set(statuses(home, 2).values()) == {"cached"}
    # A stat-identical file is not read again: the fast path knows it.
    hashes = json.loads((home / "file-hashes.json").read_text())
    assert str(tmp_path / "data" / "train.csv") in hashes

    (tmp_path / "data" / "train.csv").write_text("a,b\n1,3\n")
    why = nbflow("why", str(nb))
    assert why.returncode == 0, why.stderr
    assert "file data/train.csv changed" in why.stdout
    assert nbflow("execute", str(nb)).returncode == 0
    assert {s for s, st in statuses(home, 3).items() if st == "succeeded"} == {"load"}

    # A parameter picks the file: the other file is read and keyed.
    assert nbflow("execute", str(nb), "-p", "dataset", "other").returncode == 0
    assert {s for s, st in statuses(home, 4).items() if st == "succeeded"} == {"load"}
    from nbflow.client.objects import Run

    assert len(Run("files/4", home=str(home)).data.df) == 2

    # A setup cell's read is in every step's key; a numpy file named by a parameter too.
    (tmp_path / "data" / "labels.txt").write_text("x y z\n")
    os.utime(tmp_path / "config.json")  # touched, same content: still cached
    why = nbflow("why", str(nb))
    assert "file data/labels.txt changed" in why.stdout
    assert nbflow("execute", str(nb)).returncode == 0
    assert set(statuses(home, 5).values()) == {"succeeded"}
    import numpy as np

    np.save(tmp_path / "data" / "w.npy", np.arange(4))
    (tmp_path / "config.json").write_text(json.dumps({"k": 1}))  # rewritten, same bytes
    assert nbflow("execute", str(nb)).returncode == 0
    assert {s for s, st in statuses(home, 6).items() if st == "succeeded"} == {"cfg"}


def test_show_names_reads_it_cannot_resolve(tmp_path: Path, nbflow) -> None:
    nb = _notebook(tmp_path / "files.ipynb")
    shown = nbflow("show", str(nb))
    assert shown.returncode == 0, shown.stderr
    block = shown.stdout.split("  dyn  [")[1]
    assert "unknown file: open(name) in cell 7, line 2" in block
    assert "--snapshot GLOB" in block
    load = shown.stdout.split("  load  [")[1].split("\n  cfg  [")[0]
    assert "files:   data/labels.txt, data/{dataset}.csv" in load
    assert "unknown file" not in load


def test_setup_snapshot_magic_covers_every_step(tmp_path: Path, nbflow, home: Path) -> None:
    (tmp_path / "vocab.txt").write_text("a b")
    nb = make_notebook([
        "%load_ext nbflow\n%nbflow snapshot vocab.txt\nimport os",
        "%%step one\nx = 1",
        "%%step two\ny = 2",
    ], tmp_path / "snap.ipynb")
    first = nbflow("execute", str(nb))
    assert first.returncode == 0, first.stderr
    assert nbflow("execute", str(nb)).returncode == 0
    assert set(statuses(home, 2).values()) == {"cached"}
    (tmp_path / "vocab.txt").write_text("a b c")
    why = nbflow("why", str(nb))
    assert why.stdout.count("snapshot file vocab.txt changed") == 2
    assert nbflow("execute", str(nb)).returncode == 0
    assert set(statuses(home, 3).values()) == {"succeeded"}
    from nbflow.client.objects import Run

    assert Run("snap/3", home=str(home))["one"].task.snapshot("vocab.txt") == b"a b c"
    (tmp_path / "vocab.txt").unlink()
    missing = nbflow("execute", str(nb))
    assert missing.returncode != 0
    assert "%nbflow snapshot vocab.txt matches no file" in missing.stderr
    assert "cell 1" in missing.stderr
