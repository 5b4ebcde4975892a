#!/usr/bin/python3
# The pruning peer of scripts/bench/prune.sh: PyTorch global magnitude pruning of the reference MLP.
"""Trains the reference Fashion-MNIST MLP (784-256-128-10, Adam lr 1e-3, batch 64) and prunes
its three weight matrices with torch.nn.utils.prune.global_unstructured (L1, global magnitude) on
the schedule pstrain uses: at the end of epochs start..end the pruned share grows to
s (1 - (1 - f)^3), f = (epoch - start + 1) / (end - start + 1), then the remaining epochs
fine-tune with the mask. Prints one JSON line per sparsity (0 = the dense model): sparsity,
zeros, test_accuracy.
"""
import argparse
import json
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

from fashion_torch import (  # noqa: E402
    DATA_DIR,
    accuracy,
    load_split,
    make_model,
    stratified_holdout,
    train_epoch,
)


def target(s, start, end, epoch):
    if s <= 0 or epoch < start:
        return 0.0
    if epoch >= end:
        return s
    f = (epoch - start + 1) / (end - start + 1)
    return s * (1 - (1 - f) ** 3)


def run(args, data, s):
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(args.seed)
    model = make_model(x_train.shape[1], [256, 128], 10)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    weights = [(m, "weight") for m in model if isinstance(m, nn.Linear)]
    done = 0.0
    for epoch in range(1, args.epochs + 1):
        model.train()
        train_epoch(model, nn.CrossEntropyLoss(), opt, x_train, y_train, args.batch_size, gen)
        want = target(s, args.start, args.end, epoch)
        if want > done:
            # global_unstructured prunes a share of the weights still unpruned
            prune.global_unstructured(weights, prune.L1Unstructured, amount=(want - done) / (1 - done))
            done = want
    model.eval()
    total = sum(m.weight.numel() for m, _ in weights)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in weights)
    return {"sparsity": s, "zeros": zeros, "weights": total,
            "test_accuracy": accuracy(model, x_test, y_test)}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--start", type=int, default=2)
    p.add_argument("--end", type=int, default=4)
    p.add_argument("--sparsities", default="0,0.5,0.8,0.9")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    x_all, y_all = load_split(DATA_DIR, "train")
    x_test, y_test = load_split(DATA_DIR, "t10k")
    train_idx, _ = stratified_holdout(y_all, 0.1, args.seed)
    data = (torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx]),
            torch.from_numpy(x_test), torch.from_numpy(y_test))
    for s in (float(v) for v in args.sparsities.split(",")):
        print(json.dumps(run(args, data, s)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
