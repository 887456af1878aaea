"""The file and run reads nbflow finds in a cell's code, as a table."""

from __future__ import annotations

import pytest

from nbflow.notebook.reads import Param, file_reads, run_reads, string_constants

PARAMS = frozenset({"dataset", "path"})
CASES = [
    ("open('a.txt')", ("a.txt",)),
    ("json.load(open('cfg.json', 'r'))", ("cfg.json",)),
    ("open('out.txt', 'w')", None),  # a write is not a read: nothing found
    ("pd.read_csv(f'data/{dataset}.csv')", ("data/", Param("dataset"), ".csv")),
    ("pd.read_parquet(path=path)", (Param("path"),)),
    ("np.load(path)", (Param("path"),)),
    ("numpy.loadtxt('m.txt')", ("m.txt",)),
    ("Path('notes.md').read_text()", ("notes.md",)),
    ("pathlib.Path('b.bin').read_bytes()", ("b.bin",)),
    ("Path('c.txt').open()", ("c.txt",)),
    ("DATA = 'd.csv'\npd.read_csv(DATA)", ("d.csv",)),
    ("xr.open_dataset(f'{dataset}.nc')", (Param("dataset"), ".nc")),
    ("xr.open_mfdataset('runs/')", ("runs/",)),
    ("pl.scan_parquet('e.parquet')", ("e.parquet",)),
    ("cv2.imread('d.png')", ("d.png",)),
    ("skimage.io.imread('s.tif')", ("s.tif",)),
    ("Image.open('h.png')", ("h.png",)),
    ("h5py.File('f.h5', 'r')", ("f.h5",)),
    ("h5py.File('f.h5', 'w')", None),
    ("Image.open('h.png', 'w')", None),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_file_reads(source: str, expected: tuple[object, ...] | None) -> None:
    found = file_reads(source, PARAMS, string_constants([source]))
    if expected is None:
        assert found == []
    else:
        assert [r.path for r in found] == [expected]


@pytest.mark.parametrize("source", ["open(name)", "pd.read_csv(f'{other}.csv')",
                                    "np.load(os.path.join('a', 'b'))", "pd.read_csv(f'{path!r}')"])
def test_unresolved_reads_are_reported(source: str) -> None:
    (read,) = file_reads(source, PARAMS, {})
    assert read.path is None and read.text in source


def test_not_file_reads() -> None:
    assert file_reads("pd.read_sql('SELECT 1', con)\nx.read()\nopen", PARAMS, {}) == []


def test_run_reads() -> None:
    source = ("import nbflow\nfrom nbflow import Flow, Run\n"
              "m = Flow('train').latest_successful_run.data.model\n"
              "r = nbflow.Flow('prep').latest_run\nold = Run('train/4')\n"
              "dyn = Flow(name).latest_run\n")
    labels = [r.label for r in run_reads(source)]
    assert labels == ["Flow('train').latest_successful_run", "Flow('prep').latest_run",
                      "Run('train/4')"]


def test_the_text_filter_lets_every_reader_name_through() -> None:
    """A cell is walked for reads only if its text names something a read needs: every
    name the walk matches must pass the filter (a new loader must be added to both)."""
    from nbflow.notebook import reads

    names = {*reads._READ_TEXT, *reads._CLIENT_CLASSES, "read_x",  # (_WHICH needs Flow)
             *(f"{prefix}x" for prefix in reads._READ_PREFIXES), *reads._READ_NAMES,
             *(n for loaders in reads._LOADERS.values() for n in loaders)}
    assert {n for n in names if reads._MAY_READ.search(n) is None} == set()
    assert reads._MAY_READ.search("x = math.sqrt(len(values))\nprint(x)") is None
    # a non-ASCII identifier that the parser normalizes to `open` is still found
    assert [r.path for r in file_reads("ｏｐｅｎ('n.txt')", PARAMS, {})] == [("n.txt",)]
