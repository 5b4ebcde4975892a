#!/usr/bin/python3
# The scikit-learn side of scripts/bench/tabular_vs_sklearn.sh: k-fold CV of a mixed-type CSV.
"""Cross-validates ColumnTransformer(OneHotEncoder + StandardScaler) followed by
LogisticRegression (classification) or Ridge (regression) on a CSV with text columns, and
prints one JSON line: the mean and std over folds of accuracy or MSE.

The columns are prepared the way pstrain reads them, so that the two differ only in the
trainer: cells that are empty, NA, NaN, N/A or ? are missing; a date column (YYYY-MM-DD or
YYYY/MM/DD, optionally with a time) becomes year, month, day of week and day of year; a
yes/no/true/false column becomes 1/0; a text column is categorical, its missing cells a value of
their own. Pipeline, fitted on each fold's training rows only:
  categorical: OneHotEncoder(handle_unknown="ignore")
  numeric:     SimpleImputer(strategy="mean") then StandardScaler()
  model:       LogisticRegression(C=1.0, max_iter=10000) or Ridge(alpha=1.0)
Folds: StratifiedKFold (classification) or KFold, n_splits=K, shuffle=True, random_state=SEED;
with --folds-from OOF.csv also pstrain's own folds (its oof_predictions.csv: row, repeat, fold),
so that the two trainers can be compared on identical train/test rows.
"""
import argparse
import csv
import datetime
import json
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import KFold, StratifiedKFold  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

MISSING = {"", "na", "nan", "n/a", "?"}
BOOLS = {"true": 1, "yes": 1, "t": 1, "y": 1, "false": 0, "no": 0, "f": 0, "n": 0}


def number(s):
    try:
        return float(s)
    except ValueError:
        return None


def date(s):
    s = s.strip()
    if len(s) < 10 or s[4] not in "-/" or s[7] != s[4]:
        return None
    try:
        return datetime.date(int(s[0:4]), int(s[5:7]), int(s[8:10]))
    except ValueError:
        return None


def columns(path, target, drop):
    rows = list(csv.reader(open(path, encoding="utf-8-sig", newline="")))
    header, body = rows[0], [r for r in rows[1:] if any(c.strip() for c in r)]
    cols = {h: [r[i].strip() for r in body] for i, h in enumerate(header)}
    y = cols.pop(target)
    for d in drop:
        cols.pop(d)
    return cols, y


def prepare(cols):
    """Numeric matrix columns and categorical ones, typed as pstrain types them."""
    numeric, categorical, names_num, names_cat = [], [], [], []
    for name, cells in cols.items():
        present = [c for c in cells if c.lower() not in MISSING]
        if all(number(c) is not None for c in present):
            numeric.append([number(c) if c.lower() not in MISSING else np.nan for c in cells])
            names_num.append(name)
        elif all(c.lower() in BOOLS for c in present):
            numeric.append([BOOLS[c.lower()] if c.lower() in BOOLS else np.nan for c in cells])
            names_num.append(name)
        elif all(date(c) is not None for c in present):
            ds = [date(c) if c.lower() not in MISSING else None for c in cells]
            for part in ("year", "month", "dow", "doy"):
                numeric.append([np.nan if d is None else
                                {"year": d.year, "month": d.month, "dow": d.weekday(),
                                 "doy": d.timetuple().tm_yday}[part] for d in ds])
                names_num.append(f"{name}_{part}")
        else:
            categorical.append([c if c.lower() not in MISSING else "" for c in cells])
            names_cat.append(name)
    x_num = np.array(numeric, dtype=float).T if numeric else np.zeros((len(cells), 0))
    x_cat = np.array(categorical, dtype=object).T if categorical else None
    return x_num, x_cat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--target", required=True)
    ap.add_argument("--task", choices=["classification", "regression"], required=True)
    ap.add_argument("--drop", default="")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds-from", help="pstrain oof_predictions.csv: also score on its folds")
    a = ap.parse_args()
    cols, y_text = columns(a.csv, a.target, [d for d in a.drop.split(",") if d])
    x_num, x_cat = prepare(cols)
    n_num = x_num.shape[1]
    x = np.concatenate([x_num.astype(object), x_cat], axis=1) if x_cat is not None else x_num
    parts = [("num", Pipeline([("impute", SimpleImputer(strategy="mean")),
                               ("scale", StandardScaler())]), list(range(n_num)))]
    if x_cat is not None:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore"),
                      list(range(n_num, x.shape[1]))))
    if a.task == "classification":
        classes = sorted(set(y_text))
        y = np.array([classes.index(v) for v in y_text])
        model = LogisticRegression(C=1.0, max_iter=10000)
        split = StratifiedKFold(n_splits=a.folds, shuffle=True, random_state=a.seed).split(x, y)
    else:
        y = np.array([float(v) for v in y_text])
        model = Ridge(alpha=1.0)
        split = KFold(n_splits=a.folds, shuffle=True, random_state=a.seed).split(x)
    result = {"metric": "accuracy" if a.task == "classification" else "mse"}
    result.update(cross_validate(x, y, parts, model, split, a.task))
    if a.folds_from:
        same = cross_validate(x, y, parts, model, folds_from(a.folds_from, len(y)), a.task)
        result["same_folds_mean"] = same["mean"]
    print(json.dumps(result))


def folds_from(path, n):
    """[(train_idx, test_idx)] of repeat 0 of pstrain's oof_predictions.csv."""
    fold_of = {}
    for r in csv.DictReader(open(path)):
        if r["repeat"] == "0":
            fold_of[int(r["row"])] = int(r["fold"])
    k = max(fold_of.values()) + 1
    rows = np.arange(n)
    return [(rows[[fold_of[i] != f for i in rows]], rows[[fold_of[i] == f for i in rows]])
            for f in range(k)]


def cross_validate(x, y, parts, model, split, task):
    scores = []
    for train, test in split:
        pipe = Pipeline([("columns", ColumnTransformer(parts)), ("model", model)])
        pipe.fit(x[train], y[train])
        pred = pipe.predict(x[test])
        if task == "classification":
            scores.append(float(np.mean(pred == y[test])))
        else:
            scores.append(float(np.mean((pred - y[test]) ** 2)))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "folds": scores}

if __name__ == "__main__":
    sys.exit(main())
