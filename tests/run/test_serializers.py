"""Serializers by type: objects cloudpickle cannot store, NumPy as .npy, entry points."""

from __future__ import annotations

import textwrap
from pathlib import Path

from nbbuild import make_notebook
from nbtest import query

# A type cloudpickle refuses (it holds a lock), with its own save/load.
_LOCKED = textwrap.dedent("""\
    import threading

    class Locked:
        def __init__(self, value):
            self.value = value
            self.lock = threading.Lock()

        def save(self, f):
            f.write(repr(self.value).encode())

        @classmethod
        def load(cls, f):
            return cls(eval(f.read().decode()))
    """)


def test_unstorable_object_error_names_type_and_how_to_register(tmp_path: Path, nbflow) -> None:
    nb = make_notebook([_LOCKED, "%%step make\nthing = Locked(3)",
                        "%%step use\ndoubled = thing.value * 2"], tmp_path / "locked.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode != 0
    assert "Locked could not be stored" in done.stderr
    assert "nbflow.register_serializer(Locked" in done.stderr
    assert "Traceback" not in done.stderr.split("could not be stored")[0][-300:]


def test_registered_serializer_is_used_and_read_back_anywhere(tmp_path: Path, nbflow,
                                                               home: Path) -> None:
    setup = _LOCKED + textwrap.dedent("""\
        import nbflow
        nbflow.register_serializer(Locked, lambda obj, f: obj.save(f), Locked.load,
                                   name="locked")
        """)
    nb = make_notebook([setup, "%%step make\nthing = Locked(3)",
                        "%%step use\ndoubled = thing.value * 2\nkind = type(thing).__name__"],
                       tmp_path / "locked.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    rows = dict(query(home, "SELECT name, format FROM artifacts WHERE step = 'make'"))
    assert rows["thing"] == "custom:locked"
    from nbflow.client.objects import Run

    run = Run("locked/1", home=str(home))
    assert run.data.doubled == 6 and run.data.kind == "Locked"
    # This process never registered the serializer nor defined Locked: the object says how.
    assert run["make"].task.data.thing.value == 3


def test_numpy_arrays_are_npy_and_memory_mapped_downstream(tmp_path: Path, nbflow,
                                                           home: Path) -> None:
    nb = make_notebook(["import numpy as np",
                        "%%step make\narr = np.arange(12.0).reshape(3, 4)\nobj = np.array([{}])",
                        "%%step use\nmapped = type(arr) is np.ndarray and isinstance(arr.base, np.memmap)\ntotal = float(arr.sum())"
                        "\narr2 = arr * 2"],
                       tmp_path / "arrays.ipynb")
    done = nbflow("execute", str(nb))
    assert done.returncode == 0, done.stderr
    formats = dict(query(home, "SELECT name, format FROM artifacts WHERE run_id = 1"))
    assert formats["arr"] == "npy" and formats["arr2"] == "npy"
    assert formats["obj"] == "pickle"  # object arrays keep cloudpickle
    from nbflow.client.objects import Run

    run = Run("arrays/1", home=str(home))
    assert run.data.mapped is True and run.data.total == 66.0
    assert run.data.arr2.tolist() == [[0.0, 2.0, 4.0, 6.0], [8.0, 10.0, 12.0, 14.0],
                                      [16.0, 18.0, 20.0, 22.0]]


def _plugin(root: Path) -> Path:
    """A throwaway installed distribution declaring an ``nbflow.serializers`` entry point."""
    site = root / "site"
    (site / "locked_plugin").mkdir(parents=True)
    (site / "locked_plugin" / "__init__.py").write_text(_LOCKED + textwrap.dedent("""\

        class LockedSerializer:
            type = Locked

            @staticmethod
            def save(obj, f):
                f.write(b"plugin:" + repr(obj.value).encode())

            @staticmethod
            def load(f):
                data = f.read()
                assert data.startswith(b"plugin:")
                return Locked(eval(data[7:].decode()))

        serializer = LockedSerializer()
        """))
    info = site / "locked_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: locked-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[nbflow.serializers]\nlocked = locked_plugin:serializer\n")
    return site


def test_entry_point_serializer_is_discovered(tmp_path: Path, nbflow, home: Path,
                                              monkeypatch) -> None:
    import os
    import sys

    site = _plugin(tmp_path)
    nb = make_notebook(["from locked_plugin import Locked",
                        "%%step make\nthing = Locked([1, 2])",
                        "%%step use\nn = len(thing.value)"], tmp_path / "plug.ipynb")
    pythonpath = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    done = nbflow("execute", str(nb), env={"PYTHONPATH": pythonpath})
    assert done.returncode == 0, done.stderr
    rows = dict(query(home, "SELECT name, format FROM artifacts WHERE step = 'make'"))
    assert rows["thing"] == "locked"
    from nbflow.store import serializers

    monkeypatch.syspath_prepend(str(site))
    serializers.reset_entry_points()
    try:
        from nbflow.client.objects import Run

        run = Run("plug/1", home=str(home))
        assert run.data.n == 2
        assert run["make"].task.data.thing.value == [1, 2]
    finally:
        sys.modules.pop("locked_plugin", None)
        serializers.reset_entry_points()


class _OwnDistributions:
    """A finder of distributions of its own: importlib.metadata would ask it too."""

    def find_distributions(self, context: object = None) -> list[object]:
        return []


def test_the_entry_point_scan_skips_importlib_only_when_nothing_declares_the_group(
        tmp_path: Path, monkeypatch) -> None:
    import importlib.machinery
    from importlib.metadata import entry_points

    from nbflow.store import serializers

    # Hermetic: this process's finders and path are whatever earlier tests left behind.
    plain = tmp_path / "plain"
    (plain / "other-1.0.dist-info").mkdir(parents=True)
    (plain / "other-1.0.dist-info" / "entry_points.txt").write_text(
        "[console_scripts]\nother = other:main\n")
    standard = [importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter,
                importlib.machinery.PathFinder]
    assert not serializers._may_declare("nbflow.serializers", [str(plain)], standard)
    assert serializers._may_declare("nbflow.serializers", [str(plain)],
                                    [*standard, _OwnDistributions()])
    assert list(entry_points(group="nbflow.serializers")) == []
    site = _plugin(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    assert serializers._may_declare("nbflow.serializers")
    serializers.reset_entry_points()
    try:
        assert [ep.name for ep in serializers.scan_entry_points()] == ["locked"]
    finally:
        serializers.reset_entry_points()
