"""Generate the example notebooks from this one reviewable file.

    python example_notebooks/_build.py          # (re)write the .ipynb files
    python example_notebooks/_build.py --check  # exit 1 if a committed notebook differs

Edit the notebooks here, not in Jupyter: ``tests/test_examples_build.py`` fails when a
committed notebook drifts from what this script generates. Cell ids are fixed
(``<notebook>-<n>``) so that regenerating is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
from nbformat import NotebookNode

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
LANGUAGE_INFO = {"name": "python"}


def md(text: str) -> NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def notebook(stem: str, cells: list[NotebookNode]) -> NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = dict(LANGUAGE_INFO)
    for number, cell in enumerate(cells, start=1):
        cell["id"] = f"{stem}-{number}"
    nb.cells = cells
    nbformat.validate(nb)
    return nb


# ------------------------------------------------------------------ classifier


def classifier() -> list[NotebookNode]:
    return [
        md("""
# A classifier, as a workflow

This notebook trains two models side by side, sweeps a hyper-parameter and keeps
the best result. It runs top to bottom in Jupyter like any notebook, and

```bash
nbflow execute classifier.ipynb
```

replays it headless as a DAG of tasks: every `%%step` cell becomes a task in its
own kernel, independent steps run in parallel, and every variable a step binds is
stored as an artifact you can load later.
"""),
        md("""
## Setup

Plain code cells before the first step are *setup*: they run in every task's
kernel before its step, so imports and small helpers go here.
`%load_ext nbflow` makes `%%step` and `%%branch` work interactively.
"""),
        code("""
from sklearn import datasets
from sklearn.model_selection import train_test_split

%load_ext nbflow
"""),
        md("""
## Parameters

The cell below is tagged `parameters` (papermill's convention). Each value's
type comes from its default, and the command line overrides it:

```bash
nbflow execute classifier.ipynb -p dataset wine -p n_neighbors 3
nbflow execute classifier.ipynb -p grid '[0.01, 0.1, 1.0]'   # lists and dicts are JSON
```

`dataset` names one of scikit-learn's bundled data sets: `iris` (the default),
`wine`, `breast_cancer` or `digits`.
"""),
        code(
            """
test_size = 0.2  # float
n_neighbors = 5  # int
grid = [0.1, 1.0, 10.0]  # list: JSON on the command line
dataset = "iris"  # str: -p dataset wine
""",
            "parameters",
        ),
        md("""
## Load the data

`%%step load` names this cell's task. The step reads the parameters `dataset`
and `test_size` and binds `X`, `y` and the four splits: those become its
artifacts, and any later step that reads them depends on `load`.
"""),
        code("""
%%step load
X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=test_size, random_state=6, stratify=y
)
"""),
        md("""
## Two models in parallel

`knn` and `svm` both read the training split and nothing of each other, so
nbflow infers that they depend on `load` only and runs them at the same time.
"""),
        code("""
%%step knn
from sklearn.neighbors import KNeighborsClassifier

# brute-force search: a tree index would count its queries inside the fitted model,
# so scoring it later would change its bytes (and nbflow would warn about that)
knn = KNeighborsClassifier(n_neighbors, algorithm="brute").fit(X_train, y_train)
"""),
        code("""
%%step svm
from sklearn.svm import SVC

svm = SVC().fit(X_train, y_train)
"""),
        md("""
## A sweep, one task per value

`%%branch sweep --foreach grid --as c` runs its body once per element of
`grid`, with `c` bound to the element: headless, each is its own task. The
branch imports `SVC` itself so that it depends on `load` alone and runs
alongside `knn` and `svm`.

Downstream, `sweep` is the ordered list of the tasks' namespaces:
`sweep[0].c`, `sweep[0].score`, …
"""),
        code("""
%%branch sweep --foreach grid --as c
from sklearn.svm import SVC

model = SVC(C=c).fit(X_train, y_train)
score = model.score(X_test, y_test)
"""),
        md("""
## Choose

Reading `sweep` joins the branch; reading `knn` and `svm` waits for those
steps. Numeric scalars such as `accuracy` and `best_c` are recorded as
metrics, so runs can be compared (`nbflow.compare`).
"""),
        code("""
%%step choose
best = max(sweep, key=lambda t: t.score)
best_c = best.c
scores = {
    "knn": knn.score(X_test, y_test),
    "svm": svm.score(X_test, y_test),
    f"svm C={best_c}": best.score,
}
accuracy = float(max(scores.values()))
"""),
        md("""
## Scratch

Code cells after the first step that are not steps are scratch: they run when
you run the notebook in Jupyter and are skipped headless.
"""),
        code("""
print(f"best C = {best_c}, accuracy = {accuracy:.3f}")
scores
"""),
        md("""
## After a headless run

```python
from nbflow import Flow

run = Flow("classifier").latest_run
run.data.accuracy, run.data.best_c   # artifacts load lazily
run["knn"].task.data.knn             # one step's artifact
```

or from a terminal: `nbflow runs classifier.ipynb`, `nbflow dump classifier/RUN choose scores`.
"""),
    ]


# ------------------------------------------------------------------ parameters


def parameters() -> list[NotebookNode]:
    return [
        md("""
# Parameters

A tour of run parameters: how a notebook declares them and every way to set them.
Run it as is, or override a value:

```bash
nbflow execute parameters.ipynb -p learning_rate 0.5
```
"""),
        code("%load_ext nbflow"),
        md("""
## Declaring parameters

Parameters live in the one code cell tagged `parameters`, as in papermill. Each
default gives its parameter a type, and a value from the command line is coerced
to it: numbers are parsed, `True`/`False` become booleans, and lists and dicts
are read as JSON.
"""),
        code(
            """
learning_rate = 0.1  # float
epochs = 5  # int
optimizer = "sgd"  # str: "sgd" or "momentum"
verbose = False  # bool
layers = [32, 16]  # list: JSON on the command line
config = {"init": 5.0, "momentum": 0.5}  # dict: JSON on the command line
""",
            "parameters",
        ),
        md("""
A parameter without a default is *required*: declare it with an annotation only,

```python
dataset: str   # nbflow execute stops and lists the parameters unless -p dataset … is given
```

(every parameter here has a default, so this notebook runs with no arguments).

## Setting parameters

From the command line, papermill style; lists and dicts are JSON:

```bash
nbflow execute parameters.ipynb -p learning_rate 0.5 -p layers '[64, 32]'
nbflow execute parameters.ipynb -p verbose True -p config '{"init": 2.0, "momentum": 0.9}'
```

From a YAML file (`params.yaml` sits next to this notebook):

```bash
nbflow execute parameters.ipynb -f params.yaml
```

From the environment, as `NBFLOW_PARAM_<NAME>` (the command line wins over it):

```bash
NBFLOW_PARAM_LEARNING_RATE=0.5 nbflow execute parameters.ipynb
```

An unknown name is an error that lists the valid ones. The values a run used are
recorded with it: `Flow("parameters").latest_run.params`.
"""),
        md("""
## Steps that use them

`describe` shows what each parameter arrived as. `train` runs gradient descent
on the toy loss `w²`: with `learning_rate = 0.5` plain SGD reaches the minimum
in one step.
"""),
        code("""
%%step describe
received = {
    name: f"{value!r} ({type(value).__name__})"
    for name, value in {
        "learning_rate": learning_rate,
        "epochs": epochs,
        "optimizer": optimizer,
        "verbose": verbose,
        "layers": layers,
        "config": config,
    }.items()
}
for name, text in received.items():
    print(f"{name:>13} = {text}")
"""),
        code("""
%%step train
if optimizer not in ("sgd", "momentum"):
    raise ValueError(f"optimizer must be 'sgd' or 'momentum', not {optimizer!r}")
momentum = config["momentum"] if optimizer == "momentum" else 0.0
weight, velocity = config["init"], 0.0
history = []
for epoch in range(epochs):
    velocity = momentum * velocity - learning_rate * 2 * weight  # the gradient of w² is 2w
    weight += velocity
    history.append(weight**2)
    if verbose:
        print(f"epoch {epoch}: loss {history[-1]:.4g}")
loss = history[-1]
"""),
        code("""
%%step report
sizes = [4, *layers, 1]  # a dense net with 4 inputs and 1 output
n_weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
summary = f"{optimizer}, lr={learning_rate}, {epochs} epochs: loss {loss:.4g}; net {sizes} has {n_weights} weights"
print(summary)
"""),
    ]


# ----------------------------------------------------------------------- train


def train() -> list[NotebookNode]:
    return [
        md("""
# Train

Fits a model and evaluates it. Its sibling `predict.ipynb` loads the model from
this notebook's latest successful run, so run this one first:

```bash
nbflow execute train.ipynb
nbflow execute predict.ipynb
```

The last `holdout` rows of the data set are set aside here, never fitted or
evaluated on: they are the "new data" `predict.ipynb` scores.
"""),
        code("""
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

%load_ext nbflow
"""),
        code(
            """
holdout = 69  # rows kept back for predict.ipynb
test_size = 0.25
C = 1.0  # inverse regularization strength
seed = 0
""",
            "parameters",
        ),
        md("""
## Load and split

The breast-cancer data set ships with scikit-learn (569 rows, 30 features).
`holdout_index` is stored as an artifact, so `predict.ipynb` knows exactly which
rows this run never saw.
"""),
        code("""
%%step load
X, y = datasets.load_breast_cancer(return_X_y=True)
holdout_index = list(range(len(X) - holdout, len(X)))
X_train, X_test, y_train, y_test = train_test_split(
    X[:-holdout], y[:-holdout], test_size=test_size, random_state=seed, stratify=y[:-holdout]
)
"""),
        code("""
%%step fit
model = make_pipeline(StandardScaler(), LogisticRegression(C=C)).fit(X_train, y_train)
"""),
        code("""
%%step evaluate
accuracy = float(model.score(X_test, y_test))
n_train, n_test = len(X_train), len(X_test)
"""),
        code("""
print(f"accuracy {accuracy:.3f} on {n_test} test rows ({n_train} trained on, {holdout} held out)")
"""),
    ]


# --------------------------------------------------------------------- predict


def predict() -> list[NotebookNode]:
    return [
        md("""
# Predict

Uses the model from `train.ipynb`'s latest successful run to score the rows that
run held out. Run `nbflow execute train.ipynb` first, from this folder (both
notebooks then share the default home, `./.nbflow`).

```bash
nbflow execute predict.ipynb
```
"""),
        code("""
import pandas as pd
from nbflow import Flow
from sklearn import datasets

%load_ext nbflow
"""),
        md("""
## Fetch the model

The client API reads train's runs from the catalog. nbflow records what the
step read as its lineage (`nbflow dump predict/RUN/fetch`, `Run(...).lineage`),
and `train_run` keeps the pathspec as an artifact too.

The step's source never changes, but what it fetches does whenever `train.ipynb`
succeeds again: nbflow sees `Flow("train").latest_successful_run` in the code and
puts the run it resolves to in the cache key, so the step runs again then
(`nbflow why predict.ipynb` says "upstream run train/5 replaces train/4") and is
reused otherwise.
"""),
        code("""
%%step fetch
run = Flow("train").latest_successful_run
model = run.data.model
holdout_index = run.data.holdout_index
train_run = run.pathspec
"""),
        md("""
## Predict

`predictions` is a DataFrame, stored in a columnar format that `nbflow sql`
can query.
"""),
        code("""
%%step predict
X, y = datasets.load_breast_cancer(return_X_y=True)
X_new = X[holdout_index]
predictions = pd.DataFrame(
    {
        "row": holdout_index,
        "predicted": model.predict(X_new),
        "probability": model.predict_proba(X_new)[:, 1],
        "actual": y[holdout_index],
    }
)
n_predicted = len(predictions)
holdout_accuracy = float((predictions["predicted"] == predictions["actual"]).mean())
"""),
        code("""
print(f"{n_predicted} rows predicted with the model from {train_run}")
print(f"accuracy on the held-out rows: {holdout_accuracy:.3f}")
predictions.head()
"""),
    ]


NOTEBOOKS: dict[str, Callable[[], list[NotebookNode]]] = {
    "classifier": classifier,
    "parameters": parameters,
    "train": train,
    "predict": predict,
}


def render(stem: str) -> str:
    """The exact text of ``<stem>.ipynb``."""
    text = nbformat.writes(notebook(stem, NOTEBOOKS[stem]()))
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the example notebooks.")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for stem in NOTEBOOKS:
        path = HERE / f"{stem}.ipynb"
        text = render(stem)
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.name}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python example_notebooks/_build.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
