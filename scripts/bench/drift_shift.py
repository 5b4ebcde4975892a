"""Data and peer of drift_shift.sh: writes the training, plain and shifted test files, then
compares pstrain drift's JSON with the truth and with scipy.stats.ks_2samp on the raw columns.

  drift_shift.py prepare-csv SRC OUTDIR SEED        breast cancer: train/plain/shifted CSV files
  drift_shift.py prepare-idx SRCDIR OUTDIR SEED     Fashion-MNIST: shifted t10k images (IDX)
  drift_shift.py compare-csv OUTDIR JSON            confusion and KS against scipy
  drift_shift.py compare-idx SRCDIR OUTDIR JSON
"""
import csv
import gzip
import json
import struct
import sys

import numpy as np
from scipy.stats import ks_2samp

# Shifted on purpose: these columns are scaled and offset; the category mix of "site" changes.
CSV_SHIFTED = ["mean_radius", "mean_texture", "worst_area", "smoothness_error",
               "worst_symmetry", "mean_concavity"]
SITES = ["north", "south", "east", "west"]
SITE_MIX_TRAIN = [0.4, 0.3, 0.2, 0.1]
SITE_MIX_SHIFTED = [0.1, 0.2, 0.3, 0.4]
IDX_SHIFTED = [28 * r + c for r in (8, 14, 20) for c in range(6, 22, 2)]  # 24 pixels


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def prepare_csv(src, out, seed):
    rng = np.random.default_rng(seed)
    header, rows = read_csv(src)
    order = rng.permutation(len(rows))
    n_train = 400
    train = [rows[i] for i in order[:n_train]]
    test = [rows[i] for i in order[n_train:]]
    header = header[:-1] + ["site", header[-1]]
    def with_site(rs, mix):
        sites = rng.choice(SITES, size=len(rs), p=mix)
        return [r[:-1] + [s, r[-1]] for r, s in zip(rs, sites)]
    train = with_site(train, SITE_MIX_TRAIN)
    plain = with_site(test, SITE_MIX_TRAIN)
    shifted = with_site(test, SITE_MIX_SHIFTED)
    values = np.array([[float(v) for v in r[:-2]] for r in train])
    for name in CSV_SHIFTED:
        j = header.index(name)
        std = values[:, j].std()
        for r in shifted:
            r[j] = "%.6g" % (float(r[j]) * 1.25 + 0.5 * std)
    write_csv(out + "/train.csv", header, train)
    write_csv(out + "/plain.csv", header, plain)
    write_csv(out + "/shifted.csv", header, shifted)


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows * cols)
    return np.frombuffer(data, np.uint8, offset=8)


def write_idx(path, images, labels):
    with gzip.open(path + "/shifted-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
    with gzip.open(path + "/shifted-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, len(labels)) + labels.tobytes())


def prepare_idx(src, out, seed):
    images = read_idx(src + "/t10k-images-idx3-ubyte.gz").copy()
    labels = read_idx(src + "/t10k-labels-idx1-ubyte.gz")
    cols = images[:, IDX_SHIFTED].astype(np.float64)
    images[:, IDX_SHIFTED] = np.clip(np.rint(cols * 0.6 + 60), 0, 255).astype(np.uint8)
    write_idx(out, images, labels)


def confusion(flagged, truth, names):
    tp = sum(1 for n in names if n in flagged and n in truth)
    fp = sum(1 for n in names if n in flagged and n not in truth)
    fn = sum(1 for n in names if n not in flagged and n in truth)
    tn = len(names) - tp - fp - fn
    print("                     truly shifted   not shifted")
    print("  flagged            %13d %13d" % (tp, fp))
    print("  not flagged        %13d %13d" % (fn, tn))
    return fp == 0 and fn == 0


def ks_table(rows, train, test, names, show):
    print("  %-22s %9s %9s %9s %11s %11s" % ("input", "psi", "ks", "scipy_ks", "ks_p", "scipy_p"))
    gaps = []
    for n in names:
        r = rows[n]
        if r["kind"] != "numeric":
            continue
        ks = ks_2samp(train[n], test[n], method="asymp")
        gaps.append(abs(ks.statistic - r["ks"]))
        within = r["ks"] - 1e-9 <= ks.statistic <= r["ks_upper"] + 1e-9
        if n in show:
            print("  %-22s %9.4f %9.4f %9.4f %11.3g %11.3g%s" % (
                n[:22], r["psi"], r["ks"], ks.statistic, r["ks_p"], ks.pvalue,
                "" if within else "  (outside pstrain's bound)"))
    print("  |pstrain ks - scipy ks| over all %d numeric inputs: median %.4f, max %.4f" % (
        len(gaps), float(np.median(gaps)), max(gaps)))


def compare_csv(out, json_path, label):
    doc = json.load(open(json_path))
    rows = {r["name"]: r for r in doc["inputs"]}
    flagged = {n for n, r in rows.items() if r["flagged"]}
    truth = set(CSV_SHIFTED + ["site"]) if label == "shifted" else set()
    print("%s test file: flagged %s" % (label, ", ".join(sorted(flagged)) or "none"))
    ok = confusion(flagged, truth, list(rows))
    header, train_rows = read_csv(out + "/train.csv")
    _, test_rows = read_csv(out + "/" + label + ".csv")
    cols = lambda rs: {h: np.array([float(r[j]) for r in rs]) for j, h in enumerate(header)
                       if h not in ("site", "target")}
    site = rows["site"]
    print("  site (categorical): psi %.4f chi2 %.2f df %d p %.3g" % (
        site["psi"], site["chi2"], site["df"], site["chi2_p"]))
    show = CSV_SHIFTED + [n for n in header if n not in CSV_SHIFTED][:4]
    ks_table(rows, cols(train_rows), cols(test_rows), list(rows), show)
    return ok


def compare_idx(src, out, json_path, label):
    doc = json.load(open(json_path))
    rows = {r["name"]: r for r in doc["inputs"]}
    names = list(rows)
    flagged = {n for n, r in rows.items() if r["flagged"]}
    truth = {"f%d" % j for j in IDX_SHIFTED} if label == "shifted" else set()
    print("%s t10k: %d of %d pixels flagged" % (label, len(flagged), len(names)))
    if flagged:
        print("  flagged: " + ", ".join(sorted(flagged, key=lambda n: int(n[1:]))))
    ok = confusion(flagged, truth, names)
    train = read_idx(src + "/train-images-idx3-ubyte.gz")
    test = (read_idx(out + "/shifted-images-idx3-ubyte.gz") if label == "shifted"
            else read_idx(src + "/t10k-images-idx3-ubyte.gz"))
    to_cols = lambda a: {"f%d" % j: a[:, j] for j in range(a.shape[1])}
    show = ["f%d" % j for j in IDX_SHIFTED[:6]] + ["f%d" % j for j in (300, 406, 490, 600)]
    ks_table(rows, to_cols(train), to_cols(test), names, show)
    return ok


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prepare-csv":
        prepare_csv(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "prepare-idx":
        prepare_idx(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "compare-csv":
        sys.exit(0 if compare_csv(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif cmd == "compare-idx":
        sys.exit(0 if compare_idx(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]) else 1)
