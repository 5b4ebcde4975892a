#!/usr/bin/python3
# The distillation peer of scripts/bench/distill.sh: the same student, teacher and protocol in PyTorch.
"""Trains the teacher once: the reference Fashion-MNIST MLP (784-256-128-10), or with --bag M a bag
of M of them (each on its own bootstrap draw of the training rows, probabilities averaged), or
with --cnn the CNN of examples/fashion_cnn.yaml (fashion_cnn_torch.py's network). Then
chooses the student's temperature and alpha on the validation rows (seed 0's distilled student at
every pair of the grid; the test rows are never looked at), and for each seed trains the student
784-64-10 alone (cross-entropy) and distilled with
alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE, t the teacher's logits (a bag's: the
log of its averaged probabilities), the same epochs, seed, Adam lr 1e-3 and batch 64 for both.
Prints one JSON object: the grid's validation accuracies, the choice, and per seed the test
accuracies.
"""
import argparse
import json
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from fashion_cnn_torch import make_cnn  # noqa: E402
from fashion_torch import DATA_DIR, accuracy, load_split, make_model, stratified_holdout  # noqa: E402


class Bag(torch.nn.Module):
    """Members' probabilities averaged; forward gives their log, the scores whose softmax is the bag."""

    def __init__(self, members):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x):
        p = torch.stack([F.softmax(m(x), dim=1) for m in self.members]).mean(dim=0)
        return torch.log(p.clamp_min(1e-12))


def train(model, x, y, epochs, batch, lr, seed, teacher=None, t=3.0, alpha=0.5):
    """teacher: None, or the teacher's scores of every row of x (scored once: it is fixed)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(x.shape[0], generator=gen)
        for start in range(0, x.shape[0], batch):
            idx = order[start : start + batch]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if teacher is not None:
                soft = F.softmax(teacher.index_select(0, idx) / t, dim=1)
                kl = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="batchmean")
                loss = alpha * t * t * kl + (1 - alpha) * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def make_teacher(x, y, epochs, bag, cnn):
    if cnn:
        torch.manual_seed(1000)
        return train(make_cnn(), x, y, epochs, 64, 1e-3, 1000).eval()
    if bag == 0:
        torch.manual_seed(1000)
        return train(make_model(784, [256, 128], 10), x, y, epochs, 64, 1e-3, 1000).eval()
    members = []
    rng = np.random.RandomState(2000)
    for m in range(bag):
        draw = torch.from_numpy(rng.randint(0, x.shape[0], size=x.shape[0]))
        torch.manual_seed(1000 + m)
        members.append(train(make_model(784, [256, 128], 10), x[draw], y[draw], epochs, 64, 1e-3,
                             1000 + m))
    return Bag(members).eval()


def student(x, y, epochs, seed, teacher=None, t=3.0, alpha=0.5):
    torch.manual_seed(seed)
    return train(make_model(784, [64], 10), x, y, epochs, 64, 1e-3, seed, teacher, t, alpha)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--teacher-epochs", type=int, default=15)
    p.add_argument("--bag", type=int, default=0)
    p.add_argument("--cnn", action="store_true", help="the teacher is the CNN (--bag is ignored)")
    p.add_argument("--temperatures", default="2,4")
    p.add_argument("--alphas", default="0.5,0.9")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x_all, y_all = load_split(DATA_DIR, "train")
    x_test, y_test = load_split(DATA_DIR, "t10k")
    train_idx, val_idx = stratified_holdout(y_all, 0.1, 0)
    x, y = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    x_val, y_val = torch.from_numpy(x_all[val_idx]), torch.from_numpy(y_all[val_idx])
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    teacher = make_teacher(x, y, args.teacher_epochs, args.bag, args.cnn)
    with torch.no_grad():
        teacher_acc = accuracy(teacher, x_test, y_test)
        # as pstrain's cache does: the fixed teacher scores each training row once
        scores = torch.cat([teacher(x[i : i + 1024]) for i in range(0, x.shape[0], 1024)])
    grid = {}
    for t in args.temperatures.split(","):
        for a in args.alphas.split(","):
            s = student(x, y, args.epochs, 0, scores, float(t), float(a))
            with torch.no_grad():
                grid["T=%s a=%s" % (t, a)] = (accuracy(s, x_val, y_val), float(t), float(a))
    best = max(grid.values(), key=lambda v: (v[0], -v[1], -v[2]))
    seeds = []
    for seed in range(args.repeats):
        alone = student(x, y, args.epochs, seed)
        dist = student(x, y, args.epochs, seed, scores, best[1], best[2])
        with torch.no_grad():
            seeds.append({"seed": seed, "alone_accuracy": accuracy(alone, x_test, y_test),
                          "distilled_accuracy": accuracy(dist, x_test, y_test)})
    print(json.dumps({"teacher_accuracy": teacher_acc,
                      "grid": {k: v[0] for k, v in grid.items()},
                      "temperature": best[1], "alpha": best[2], "seeds": seeds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
