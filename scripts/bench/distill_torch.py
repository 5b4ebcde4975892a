#!/usr/bin/python3
# The distillation peer of scripts/bench/distill.sh: the same student, teacher and loss in PyTorch.
"""Trains the reference Fashion-MNIST MLP (784-256-128-10) as the teacher, then the student
784-64-10 alone (cross-entropy) and distilled from the teacher with
alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE, the same epochs, seed, Adam lr 1e-3
and batch 64 for both students. Prints one JSON line: teacher, alone and distilled test accuracy.
"""
import argparse
import json
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from fashion_torch import DATA_DIR, accuracy, load_split, make_model, stratified_holdout  # noqa: E402


def train(model, x, y, epochs, batch, lr, seed, teacher=None, t=3.0, alpha=0.5):
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
                with torch.no_grad():
                    soft = F.softmax(teacher(xb) / t, dim=1)
                kl = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="batchmean")
                loss = alpha * t * t * kl + (1 - alpha) * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    return model


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--teacher-epochs", type=int, default=5)
    p.add_argument("--temperature", type=float, default=3.0)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x_all, y_all = load_split(DATA_DIR, "train")
    x_test, y_test = load_split(DATA_DIR, "t10k")
    train_idx, _ = stratified_holdout(y_all, 0.1, 0)
    x, y = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    torch.manual_seed(1000 + args.seed)
    teacher = train(make_model(784, [256, 128], 10), x, y, args.teacher_epochs, 64, 1e-3, 0)
    torch.manual_seed(args.seed)
    alone = train(make_model(784, [64], 10), x, y, args.epochs, 64, 1e-3, args.seed)
    torch.manual_seed(args.seed)
    distilled = train(make_model(784, [64], 10), x, y, args.epochs, 64, 1e-3, args.seed,
                      teacher, args.temperature, args.alpha)
    print(json.dumps({"seed": args.seed, "teacher_accuracy": accuracy(teacher, x_test, y_test),
                      "alone_accuracy": accuracy(alone, x_test, y_test),
                      "distilled_accuracy": accuracy(distilled, x_test, y_test)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
