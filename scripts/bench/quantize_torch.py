#!/usr/bin/python3
# The quantisation peer: the reference MLP in PyTorch, float and torch.quantization.quantize_dynamic.
"""Trains the Fashion-MNIST MLP 784-256-128-10 as fashion_torch.py does (one thread), or with
--model cnn the CNN of fashion_cnn_torch.py, then measures the float model and its dynamic int8
quantisation (torch.quantization.quantize_dynamic: the Linear layers only, dynamic quantisation
has no convolution): serialised state_dict bytes, single-row latency p50/p99 (median over
--repeats of --single-rows timed forwards), throughput in batches of 256, and test accuracy.
Prints one JSON line per variant.
"""
import argparse
import io
import json
import os
import statistics
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from torch import nn  # noqa: E402

import fashion_torch as ft  # noqa: E402


def state_bytes(model):
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


@torch.no_grad()
def single_row(model, x, n):
    """p50 and p99 in microseconds of n single-row forwards, rows taken in turn."""
    for i in range(n // 10):
        model(x[i % x.shape[0] : i % x.shape[0] + 1])
    times = []
    for i in range(n):
        row = x[i % x.shape[0] : i % x.shape[0] + 1]
        t0 = time.perf_counter()
        model(row)
        times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return times[n // 2], times[n * 99 // 100]


@torch.no_grad()
def throughput(model, x, secs, batch=256):
    xb = x[:batch]
    model(xb)
    rows, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < secs:
        model(xb)
        rows += batch
    return rows / (time.perf_counter() - t0)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--single-rows", type=int, default=2000)
    p.add_argument("--batch-secs", type=float, default=0.5)
    p.add_argument("--data-dir", default=ft.DATA_DIR)
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_all, y_all = ft.load_split(args.data_dir, "train")
    x_test, y_test = ft.load_split(args.data_dir, "t10k")
    train_idx, _ = ft.stratified_holdout(y_all, 0.1, 0)
    x_train, y_train = torch.from_numpy(x_all[train_idx]), torch.from_numpy(y_all[train_idx])
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)
    if args.model == "cnn":
        import fashion_cnn_torch

        model = fashion_cnn_torch.make_cnn()
    else:
        model = ft.make_model(784, [256, 128], 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(args.epochs):
        model.train()
        ft.train_epoch(model, nn.CrossEntropyLoss(), opt, x_train, y_train, 64, gen)
    model.eval()
    qmodel = torch.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    for name, m in (("torch float", model), ("torch dynamic int8", qmodel)):
        p50s, p99s, rates = [], [], []
        for _ in range(args.repeats):
            p50, p99 = single_row(m, x_test, args.single_rows)
            p50s.append(p50)
            p99s.append(p99)
            rates.append(throughput(m, x_test, args.batch_secs))
        print(json.dumps({"tool": name, "bytes": state_bytes(m),
                          "p50_us": statistics.median(p50s), "p99_us": statistics.median(p99s),
                          "rows_per_s": statistics.median(rates),
                          "test_accuracy": ft.accuracy(m, x_test, y_test),
                          "engine": torch.backends.quantized.engine}))


if __name__ == "__main__":
    main(sys.argv[1:])
