#!/usr/bin/python3
# The reference Fashion-MNIST workload in PyTorch on one thread, timed like pstrain (speed benchmark).
"""Trains the MLP 784-256-128-10 (ReLU, softmax cross-entropy, Adam lr 1e-3, batch 64) on
Fashion-MNIST with a seeded, stratified 10% validation hold-out, and prints one JSON line:
samples_per_s, seconds, test_accuracy, epochs (and a few extra fields).

Only the training steps are timed, as pstrain times them: per epoch the shuffle, then for every
mini-batch the row gather, forward, loss, backward and optimizer step. Evaluation is not timed.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

# One BLAS thread, set before numpy or torch load OpenBLAS: torch.set_num_threads() only governs
# torch's own OpenMP pool, not the pthreads OpenBLAS would start for a large sgemm.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Returns the array stored in a (gzipped) IDX file: uint8 images (n, rows*cols) or labels (n)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path}: not an unsigned-byte IDX file of 1 or 3 dimensions")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} bytes of data, header says {dims}")
    return data.reshape(dims[0], -1) if ndim == 3 else data


def load_split(data_dir, prefix):
    """(x, y) for prefix 'train' or 't10k': x float32 (n, 784) in [0, 1], y int64 (n)."""
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{prefix}: {x.shape[0]} images but {y.shape[0]} labels")
    return x.astype(np.float32) / 255.0, y.astype(np.int64)


def stratified_holdout(y, fraction, seed):
    """Indices (train, val): a seeded share `fraction` of every class goes to validation."""
    rng = np.random.RandomState(seed)
    train_idx, val_idx = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        n_val = int(round(fraction * rows.size))
        val_idx.append(rows[:n_val])
        train_idx.append(rows[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def make_model(n_in, hidden, n_out):
    layers, width = [], n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def train_epoch(model, loss_fn, opt, x, y, batch, gen):
    """One shuffled pass; returns (mean batch loss, seconds spent in the training steps)."""
    t0 = time.perf_counter()
    order = torch.randperm(x.shape[0], generator=gen)
    loss_sum, steps = 0.0, 0
    for start in range(0, x.shape[0], batch):
        idx = order[start : start + batch]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        loss_sum += loss.item()
        steps += 1
    return loss_sum / steps, time.perf_counter() - t0


@torch.no_grad()
def accuracy(model, x, y, chunk=1024):
    correct = 0
    for start in range(0, x.shape[0], chunk):
        pred = model(x[start : start + chunk]).argmax(dim=1)
        correct += int((pred == y[start : start + chunk]).sum())
    return correct / x.shape[0]


def blas_config():
    """torch's BLAS_INFO and, when it is OpenBLAS, the build and the kernel it runs."""
    import ctypes
    import re

    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    info = "BLAS_INFO=" + (found.group(1) if found else "?")
    try:
        lib = ctypes.CDLL("libopenblas.so.0")  # the copy torch already loaded, if any
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return "%s; %s, kernel %s" % (
            info,
            lib.openblas_get_config().decode(),
            lib.openblas_get_corename().decode(),
        )
    except (OSError, AttributeError):
        return info


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--data-dir", default=DATA_DIR)
    p.add_argument("--verbose", action="store_true", help="one line per epoch on stderr")
    args = p.parse_args(argv)
    if args.epochs <= 0 or args.batch_size <= 0:
        p.error("--epochs and --batch-size must be positive")
    return args


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    x_all, y_all = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    train_idx, val_idx = stratified_holdout(y_all, args.val_fraction, args.seed)
    x_train, y_train = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    x_val, y_val = torch.from_numpy(x_all[val_idx]), torch.from_numpy(y_all[val_idx])
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)

    model = make_model(x_train.shape[1], [256, 128], 10)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    seconds, loss = 0.0, float("nan")
    for epoch in range(1, args.epochs + 1):
        model.train()
        loss, t = train_epoch(model, loss_fn, opt, x_train, y_train, args.batch_size, gen)
        seconds += t
        if args.verbose:
            model.eval()
            print(
                f"epoch {epoch}/{args.epochs}  loss {loss:.4f}  "
                f"val_accuracy {accuracy(model, x_val, y_val):.4f}  "
                f"{x_train.shape[0] / t:.0f} samples/s  {t:.1f}s",
                file=sys.stderr,
            )
    model.eval()
    result = {
        "samples_per_s": args.epochs * x_train.shape[0] / seconds,
        "seconds": seconds,
        "test_accuracy": accuracy(model, x_test, y_test),
        "val_accuracy": accuracy(model, x_val, y_val),
        "train_loss": loss,
        "epochs": args.epochs,
        "train_rows": int(x_train.shape[0]),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas_config(),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
