"""The scikit-learn side of explain_vs_sklearn.sh: a pstrain model (its ONNX export: imputation,
standard scaling and dense layers) loaded into a scikit-learn pipeline with the same fitted
numbers, checked against pstrain's own predictions, then sklearn.inspection.permutation_importance
beside pstrain's importance.csv (Spearman's rho of the two rankings), and for a linear model the
exact contributions and exact Shapley values computed here beside pstrain's attributions.

usage: explain_sklearn.py MODEL.onnx DATA.csv TARGET PSTRAIN_DIR --kind logistic|linear|mlp
       --repeats R --seed S [--timing N]
PSTRAIN_DIR holds predictions.csv, importance.csv and, for a linear model, linear.csv and
kernel.csv (attributions; kernel.csv with every row of DATA as background).
Prints a JSON object on its last line."""
import argparse
import csv
import json
import statistics
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper
from scipy.stats import spearmanr
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def read_csv(path, target):
    rows = list(csv.DictReader(open(path, encoding="utf-8-sig", newline="")))
    names = [c for c in rows[0].keys() if c != target]
    x = np.array([[float(r[c]) if r[c] not in ("", "NA") else np.nan for c in names] for r in rows])
    y = np.array([float(r[target]) for r in rows])
    return names, x, y


def onnx_numbers(path):
    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
    dense = []
    k = 0
    while f"dense{k}_weight" in init:
        dense.append((init[f"dense{k}_weight"], init[f"dense{k}_bias"]))  # (out, in), (out)
        k += 1
    ops = [n.op_type for n in m.graph.node]
    return init, dense, ops


def fitted_scaler(init, n):
    """SimpleImputer(fill) + StandardScaler whose fitted numbers are pstrain's."""
    imp = SimpleImputer(strategy="constant", fill_value=0.0).fit(np.zeros((1, n)))
    imp.statistics_ = init["fill"].copy()
    sc = StandardScaler().fit(np.zeros((2, n)) + np.arange(2)[:, None])
    sc.mean_ = init["shift"].copy()
    sc.scale_ = 1.0 / init["scale"]
    sc.var_ = sc.scale_ ** 2
    return imp, sc


def output_layer(w, b, classes):
    """A binary softmax of two logits is a sigmoid of their difference."""
    if classes == 2 and w.shape[0] == 2:
        return (w[1] - w[0])[None, :], np.array([b[1] - b[0]])
    return w, b


def estimator(kind, dense, x, y, classes):
    if kind == "linear":
        est = LinearRegression().fit(x[:5], y[:5])
        est.coef_, est.intercept_ = dense[0][0][0].copy(), float(dense[0][1][0])
        return est
    if kind == "logistic":
        est = LogisticRegression().fit(x[: 5 * classes], np.arange(5 * classes) % classes)
        est.coef_, est.intercept_ = output_layer(dense[0][0], dense[0][1], classes)
        est.classes_ = np.arange(classes).astype(float)
        return est
    hidden = tuple(w.shape[0] for w, _ in dense[:-1])
    cls = MLPClassifier if classes else MLPRegressor
    est = cls(hidden_layer_sizes=hidden, activation="relu", max_iter=1)
    labels = np.arange(len(x)) % classes if classes else y
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(x, labels)
    coefs = [w.T.copy() for w, _ in dense]
    intercepts = [b.copy() for _, b in dense]
    if classes == 2:
        w, b = output_layer(dense[-1][0], dense[-1][1], classes)
        coefs[-1], intercepts[-1] = w.T.copy(), b
    est.coefs_, est.intercepts_ = coefs, intercepts
    if classes:
        est.classes_ = np.arange(classes).astype(float)
    return est


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("data")
    ap.add_argument("target")
    ap.add_argument("dir")
    ap.add_argument("--kind", required=True, choices=["logistic", "linear", "mlp"])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timing", type=int, default=3)
    a = ap.parse_args()
    names, x, y = read_csv(a.data, a.target)
    init, dense, ops = onnx_numbers(a.onnx)
    classes = len(init["classes"]) if "classes" in init else 0
    if classes:  # labels as class indices, as pstrain's classes are the sorted values
        y = np.searchsorted(init["classes"], y).astype(float)
    imp_, sc = fitted_scaler(init, x.shape[1])
    pipe = make_pipeline(imp_, sc, estimator(a.kind, dense, sc.transform(x), y, classes))

    pred = list(csv.DictReader(open(a.dir + "/predictions.csv")))
    if classes:
        mine = pipe.predict_proba(x)
        theirs = np.array([[float(r[f"p_{c:g}"]) for c in init["classes"]] for r in pred])
    else:
        mine = pipe.predict(x)
        theirs = np.array([float(r["prediction"]) for r in pred])
    pred_diff = float(np.max(np.abs(mine - theirs)))

    scoring = "neg_log_loss" if classes else "neg_mean_squared_error"
    times = []
    for _ in range(max(1, a.timing)):
        t0 = time.perf_counter()
        r = permutation_importance(pipe, x, y, scoring=scoring, n_repeats=a.repeats,
                                   random_state=a.seed)
        times.append(time.perf_counter() - t0)
    sk = dict(zip(names, r.importances_mean))
    sk_std = dict(zip(names, r.importances_std))
    ps = {row["column"]: (float(row["mean_drop"]), float(row["std_drop"]))
          for row in csv.DictReader(open(a.dir + "/importance.csv"))}
    assert sorted(ps) == sorted(names), (sorted(ps), names)
    rho = spearmanr([ps[n][0] for n in names], [sk[n] for n in names]).correlation
    out = {"rho": float(rho), "pred_diff": pred_diff, "sklearn_seconds": statistics.median(times),
           "scoring": scoring,
           "pstrain": sorted(((n, ps[n][0], ps[n][1]) for n in names), key=lambda t: -t[1]),
           "sklearn": sorted(((n, float(sk[n]), float(sk_std[n])) for n in names),
                             key=lambda t: -t[1])}

    if a.kind in ("logistic", "linear"):
        # the explained output: the value, the log-odds of class 1, or the logit of the class
        # each row of attributions.csv names (multi-class)
        w, b = output_layer(dense[0][0], dense[0][1], classes)
        z = sc.transform(imp_.transform(x))
        z_train = (init["fill"] - init["shift"]) * init["scale"]  # the training mean, scaled
        out["linear_diff"] = attribution_gap(a.dir + "/linear.csv", names, w, z, z_train, init)
        # Shapley values of a linear model with every row as background
        out["kernel_diff"] = attribution_gap(a.dir + "/kernel.csv", names, w, z, z.mean(axis=0),
                                             init)
    print(json.dumps(out))


def attribution_gap(path, names, w, z, base, init):
    """Largest |pstrain - exact| over the rows pstrain explained, and the largest |exact|;
    exact = w_k (z - base) with k the row's explained class."""
    rows = list(csv.DictReader(open(path)))
    got = np.array([[float(r[n]) for n in names] for r in rows])
    if w.shape[0] == 1:
        k = np.zeros(len(rows), dtype=int)
    else:
        k = np.searchsorted(init["classes"], [float(r["class"]) for r in rows])
    want = w[k] * (z[: len(rows)] - base)
    return [float(np.max(np.abs(got - want))), float(np.max(np.abs(want))), len(rows)]


if __name__ == "__main__":
    sys.exit(main())
