"""Runs the DP-SGD benchmark of scripts/bench/dpsgd.sh and prints its tables (see there)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dp_rdp  # noqa: E402


def split(src, out_dir, test_fraction, seed):
    import numpy as np

    header = open(src).readline().strip()
    d = np.loadtxt(src, delimiter=",", skiprows=1)
    idx = np.random.default_rng(seed).permutation(len(d))
    n_test = int(round(test_fraction * len(d)))
    paths = {}
    for name, rows in (("train", idx[n_test:]), ("test", idx[:n_test])):
        paths[name] = os.path.join(out_dir, name + ".csv")
        np.savetxt(paths[name], d[rows], delimiter=",", header=header, comments="", fmt="%.10g")
    return paths, len(d) - n_test, n_test, d.shape[1] - 1, len(set(d[:, -1]))


def fashion(out_dir, n_train):
    """The first n_train Fashion-MNIST training images and the 10,000 test images as CSV files."""
    import gzip

    import numpy as np

    base = "/usr/share/datasets/fashion-mnist/"

    def idx(name, offset):
        with gzip.open(base + name) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    parts = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", n_train),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)}
    header = ",".join(f"p{i}" for i in range(784)) + ",target"
    paths = {}
    for name, (images, labels, n) in parts.items():
        x = idx(images, 16).reshape(-1, 784)[:n]
        y = idx(labels, 8)[:n]
        paths[name] = os.path.join(out_dir, name + ".csv")
        np.savetxt(paths[name], np.column_stack([x, y]), delimiter=",", header=header,
                   comments="", fmt="%d")
    return paths, n_train, 10000, 784, 10


def pinned(cmd, cpu):
    return ["taskset", "-c", str(cpu)] + cmd if cpu is not None else cmd


def run_pstrain(a, paths, out, seed, eps):
    cfg = os.path.join(out + ".yaml")
    with open(cfg, "w") as f:
        f.write(
            f"name: dpsgd-bench\nseed: {seed}\n"
            f"data: {{train: {paths['train']}, test: {paths['test']}, val_fraction: 0, "
            f"target: target, scaler: standard, task: classification}}\n"
            f"model: {{hidden: [{a.hidden}], activation: relu}}\n"
            f"optimizer: {{name: adam, lr: {a.lr}}}\n"
            f"train: {{epochs: {a.epochs}, batch_size: {a.batch}, progress: none}}\n"
        )
    cmd = [a.pstrain, "train", cfg, "--out", out, "-q"]
    if eps is not None:
        cmd += ["--set", f"train.dp.clip={a.clip}", "--set", f"train.dp.epsilon_budget={eps}",
                "--set", f"train.dp.delta={a.delta}"]
    subprocess.run(pinned(cmd, a.cpu), check=True, stdout=subprocess.DEVNULL)
    rep = json.load(open(os.path.join(out, "report.json")))
    metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
    return {
        "accuracy": rep["test"]["accuracy"],
        "seconds": rep["train"]["seconds"],
        "dp": rep["train"].get("dp"),
        "eps": [m.get("epsilon") for m in metrics],
    }


def run_torch(a, paths, seed, sigma):
    cmd = [a.python, os.path.join(os.path.dirname(__file__), "dpsgd_torch.py"), paths["train"],
           paths["test"], "--hidden", str(a.hidden), "--epochs", str(a.epochs), "--batch",
           str(a.batch), "--lr", str(a.lr), "--seed", str(seed)]
    if sigma is not None:
        cmd += ["--sigma", repr(sigma), "--clip", str(a.clip), "--check"]
    res = subprocess.run(pinned(cmd, a.cpu), check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pstrain", required=True)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--data")
    ap.add_argument("--fashion-rows", type=int, help="Fashion-MNIST: the first N training images")
    ap.add_argument("--work", required=True)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--eps", default="1,3,8")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cpu", type=int)
    a = ap.parse_args()
    targets = [float(e) for e in a.eps.split(",")]

    if a.fashion_rows:
        paths, n_train, n_test, n_feat, n_classes = fashion(a.work, a.fashion_rows)
        name = f"Fashion-MNIST (first {a.fashion_rows} training images, the test set)"
    else:
        paths, n_train, n_test, n_feat, n_classes = split(a.data, a.work, 0.25, 0)
        name = os.path.basename(a.data)
    steps = -(-n_train // a.batch)
    q = a.batch / n_train
    print(f"DP-SGD on {name}: {n_train} train / {n_test} test rows, {n_feat} "
          f"features, {n_classes} classes; MLP {n_feat}-{a.hidden}-{n_classes} relu, Adam lr {a.lr}, "
          f"expected batch {a.batch} (Poisson sampling, q = {q:.6g}), {steps} steps an epoch, "
          f"{a.epochs} epochs, clip {a.clip}, delta {a.delta}; seeds 0..{a.seeds - 1}, medians; "
          f"{'pinned to cpu ' + str(a.cpu) if a.cpu is not None else 'not pinned'}")
    print(f"noise multiplier: pstrain's calibration (train.dp.noise 0, train.dp.epsilon_budget = "
          f"target), used by both; python epsilon: scripts/bench/dp_rdp.py (mpmath, integer "
          f"orders by the binomial sum, fractional ones by quadrature of the definition)\n")

    rows = []
    for eps in [None] + targets:
        ps, pt = [], []
        for seed in range(a.seeds):
            tag = "none" if eps is None else f"eps{eps:g}"
            ps.append(run_pstrain(a, paths, os.path.join(a.work, f"{tag}_s{seed}"), seed, eps))
            sigma = ps[-1]["dp"]["noise_multiplier"] if eps is not None else None
            pt.append(run_torch(a, paths, seed, sigma))
        rows.append((eps, ps, pt))

    print(f"{'target':>8} {'sigma':>9} {'pstrain eps':>12} {'python eps':>12} {'max|diff|':>10} "
          f"{'pstrain acc':>12} {'torch acc':>10} {'pstrain s':>10} {'torch s':>8} {'clip check':>11}")
    per_epoch = {}
    for eps, ps, pt in rows:
        acc_p = statistics.median(r["accuracy"] for r in ps)
        acc_t = statistics.median(r["accuracy"] for r in pt)
        sec_p = statistics.median(r["seconds"] for r in ps)
        sec_t = statistics.median(r["seconds"] for r in pt)
        if eps is None:
            print(f"{'none':>8} {'-':>9} {'-':>12} {'-':>12} {'-':>10} {acc_p:>12.4f} {acc_t:>10.4f} "
                  f"{sec_p:>10.2f} {sec_t:>8.2f} {'-':>11}")
            continue
        dp = ps[0]["dp"]
        acct = dp_rdp.Accountant(dp["sampling_rate"], dp["noise_multiplier"])
        py = [acct.epsilon(steps * (e + 1), a.delta) for e in range(len(ps[0]["eps"]))]
        diff = max(abs(x - y) for x, y in zip(ps[0]["eps"], py))
        per_epoch[eps] = (ps[0]["eps"], py)
        check = max(r["check_max_diff"] for r in pt)
        print(f"{eps:>8g} {dp['noise_multiplier']:>9.5f} {ps[0]['eps'][-1]:>12.6f} {py[-1]:>12.6f} "
              f"{diff:>10.2e} {acc_p:>12.4f} {acc_t:>10.4f} {sec_p:>10.2f} {sec_t:>8.2f} "
              f"{check:>11.1e}")
    print("\nclip check: max |torch clipped sum - a loop of one-example backward passes| on 32 rows")
    print("\nepsilon after epoch (seed 0; every epoch is compared in max|diff| above):")
    n_epochs = len(next(iter(per_epoch.values()))[0]) if per_epoch else 0
    shown = [e for e in (1, 2, 3, 5, 10, 15, 20, 25, 30, 40, 50) if e < n_epochs] + [n_epochs]
    print(f"{'epoch':>6} " + " ".join(f"{'pstrain ' + format(t, 'g'):>14} {'python ' + format(t, 'g'):>14}"
                                       for t in per_epoch))
    for e in shown:
        print(f"{e:>6} " + " ".join(f"{mine[e - 1]:>14.9f} {py[e - 1]:>14.9f}"
                                    for mine, py in per_epoch.values()))


if __name__ == "__main__":
    main()
