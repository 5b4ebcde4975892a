#!/usr/bin/python3
# The fashion_cnn workload in PyTorch on one thread, timed like pstrain (cnn_vs_torch.sh).
"""Trains examples/fashion_cnn.yaml's network (conv 3x3x32 pad 1, ReLU, maxpool 2, conv 3x3x64
pad 1, ReLU, maxpool 2, dense 128, ReLU, dense 10; softmax cross-entropy, Adam lr 1e-3, batch 64)
on Fashion-MNIST with the same seeded, stratified 10% validation hold-out as fashion_torch.py, and
prints one JSON line: samples_per_s, seconds, test_accuracy, epochs (and a few extra fields).
Only the training steps are timed, as pstrain times them.
"""
import json
import os
import sys

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import fashion_torch as ft  # noqa: E402  (data loading, hold-out, timed epochs, accuracy)


def make_cnn():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def main(argv):
    args = ft.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x_all, y_all = ft.load_split(args.data_dir, "train")
    x_test, y_test = ft.load_split(args.data_dir, "t10k")
    train_idx, val_idx = ft.stratified_holdout(y_all, args.val_fraction, args.seed)
    x_train, y_train = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    x_val, y_val = torch.from_numpy(x_all[val_idx]), torch.from_numpy(y_all[val_idx])
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    model = make_cnn()
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    seconds, loss = 0.0, float("nan")
    for epoch in range(1, args.epochs + 1):
        model.train()
        loss, t = ft.train_epoch(model, loss_fn, opt, x_train, y_train, args.batch_size, gen)
        seconds += t
        if args.verbose:
            print(f"epoch {epoch}/{args.epochs}  loss {loss:.4f}  {x_train.shape[0] / t:.0f} "
                  f"samples/s  {t:.1f}s", file=sys.stderr)
    model.eval()
    print(json.dumps({
        "samples_per_s": args.epochs * x_train.shape[0] / seconds,
        "seconds": seconds,
        "test_accuracy": ft.accuracy(model, x_test, y_test),
        "val_accuracy": ft.accuracy(model, x_val, y_val),
        "train_loss": loss,
        "epochs": args.epochs,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
