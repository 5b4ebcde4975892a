#!/usr/bin/python3
# The scikit-learn side of scripts/bench/cv_vs_sklearn.sh: k-fold CV of one model on one CSV.
"""Cross-validates a standardised logistic regression or a one-hidden-layer MLP on a CSV (header
row, numeric features, the label in the column named by --target) and prints one JSON line.

Two partitions are scored with the same estimator:
  * StratifiedKFold(n_splits=K, shuffle=True, random_state=SEED): the reference result;
  * with --folds-from OOF.csv, the very folds pstrain used (its oof_predictions.csv: columns
    row, repeat, fold, ...), so the two trainers can be compared on identical train/test rows.

Only the fold loop is timed (fit and score of every fold), as pstrain's report "seconds" is: the
CSV read, the import and the fold assignment are not.

Estimators (every setting that differs from scikit-learn's defaults is named):
  logreg  Pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=10000)), lbfgs,
          multinomial for more than two classes.
  mlp     Pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), activation="relu",
          solver="adam", learning_rate_init=1e-3, batch_size=32, alpha=1e-4, max_iter=EPOCHS,
          n_iter_no_change=EPOCHS + 1, random_state=SEED)): exactly EPOCHS passes, no early stop.
"""
import argparse
import json
import os
import sys
import time
import warnings

# One BLAS thread, set before numpy loads OpenBLAS, as pstrain is run.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402


def read_csv(path, target):
    """Returns (x float64 [n, d], y int [n]) from a header-row numeric CSV."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    if target not in header:
        raise SystemExit(f"{path}: no column named {target!r}")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    col = header.index(target)
    y = data[:, col].astype(int)
    x = np.delete(data, col, axis=1)
    return x, y


def make_model(name, epochs, seed):
    if name == "logreg":
        clf = LogisticRegression(C=1.0, max_iter=10000)
    else:
        clf = MLPClassifier(hidden_layer_sizes=(64,), activation="relu", solver="adam",
                            learning_rate_init=1e-3, batch_size=32, alpha=1e-4, max_iter=epochs,
                            n_iter_no_change=epochs + 1, shuffle=True, random_state=seed)
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def pstrain_folds(path, n_rows):
    """Returns [(train_idx, test_idx)] from pstrain's oof_predictions.csv (repeat 0 only)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        i_row, i_rep, i_fold = header.index("row"), header.index("repeat"), header.index("fold")
        fold_of = np.full(n_rows, -1)
        for line in f:
            cells = line.split(",")
            if int(cells[i_rep]) == 0:
                fold_of[int(cells[i_row])] = int(cells[i_fold])
    if (fold_of < 0).any():
        raise SystemExit(f"{path}: {int((fold_of < 0).sum())} rows have no fold")
    rows = np.arange(n_rows)
    return [(rows[fold_of != k], rows[fold_of == k]) for k in range(fold_of.max() + 1)]


def run_cv(x, y, splits, model, epochs, seed):
    """Fits and scores one model per fold; returns (accuracies, fold-loop seconds)."""
    acc = []
    t0 = time.perf_counter()
    for train, test in splits:
        m = make_model(model, epochs, seed)
        m.fit(x[train], y[train])
        acc.append(float(np.mean(m.predict(x[test]) == y[test])))
    return acc, time.perf_counter() - t0


def summary(acc, seconds):
    # Population standard deviation (ddof=0), as pstrain's cv.accuracy.std.
    return {"values": acc, "mean": float(np.mean(acc)), "std": float(np.std(acc)),
            "seconds": seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="CSV file")
    p.add_argument("--target", default="target", help="label column (default target)")
    p.add_argument("--model", required=True, choices=["logreg", "mlp"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=200, help="MLP passes over the data")
    p.add_argument("--folds-from", help="pstrain oof_predictions.csv: also score on its folds")
    a = p.parse_args()

    warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP runs a fixed EPOCHS by design
    x, y = read_csv(a.data, a.target)
    skf = StratifiedKFold(n_splits=a.folds, shuffle=True, random_state=a.seed)
    acc, secs = run_cv(x, y, list(skf.split(x, y)), a.model, a.epochs, a.seed)
    out = {"model": a.model, "rows": int(len(y)), "sklearn": sklearn.__version__,
           "stratified_kfold": summary(acc, secs)}
    if a.folds_from:
        acc, secs = run_cv(x, y, pstrain_folds(a.folds_from, len(y)), a.model, a.epochs, a.seed)
        out["pstrain_folds"] = summary(acc, secs)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
