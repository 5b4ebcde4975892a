#!/usr/bin/python3
# The mackey_glass_lstm workload in PyTorch on one thread, timed like pstrain (lstm_vs_torch.sh).
"""Cuts examples/data/mackey_glass.csv as pstrain's data.window does (rows split in time order
70/20/10, each part cut into its own windows of 24 values, target the value 6 rows after a
window), standardises every window position with the training windows' mean and population
std (pstrain's standard scaler), and trains nn.LSTM(1, 32) -> Linear(32, 1) with MSE, Adam
lr 0.005, batch 32, shuffled every epoch. The weights start as pstrain draws them (glorot-uniform
input weights, an orthogonal recurrent block per gate, zero biases but the forget gate's 1).
Prints one line per epoch ({"epoch", "train_loss", "val_loss"}) and a last JSON line:
samples_per_s, seconds (training steps only, as pstrain times them), test_mse, test_r2.
"""
import argparse
import csv
import json
import os
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="examples/data/mackey_glass.csv")
    p.add_argument("--window", type=int, default=24)
    p.add_argument("--horizon", type=int, default=6)
    p.add_argument("--units", type=int, default=32)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def windows(values, first, n, window, horizon):
    count = n - window - horizon + 1
    x = np.stack([values[first + i:first + i + window] for i in range(count)])
    y = np.array([values[first + i + window - 1 + horizon] for i in range(count)])
    return x.astype(np.float32), y.astype(np.float32)


class Forecaster(nn.Module):
    def __init__(self, units):
        super().__init__()
        self.lstm = nn.LSTM(1, units, batch_first=True)
        self.out = nn.Linear(units, 1)
        h = units
        with torch.no_grad():
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0)  # fans 1 and 4h, as pstrain's
            for g in range(4):
                nn.init.orthogonal_(self.lstm.weight_hh_l0[g * h:(g + 1) * h])
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_ih_l0[h:2 * h].fill_(1.0)
            nn.init.xavier_uniform_(self.out.weight)
            self.out.bias.zero_()

    def forward(self, x):
        seq, _ = self.lstm(x.unsqueeze(-1))
        return self.out(seq[:, -1, :]).squeeze(-1)


def mse(model, x, y):
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def main(argv):
    a = parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    values = np.array([float(r["value"]) for r in csv.DictReader(open(a.data))])
    n = len(values)
    n_train, n_val = round(n * 0.7), round(n * 0.2)
    parts = [windows(values, 0, n_train, a.window, a.horizon),
             windows(values, n_train, n_val, a.window, a.horizon),
             windows(values, n_train + n_val, n - n_train - n_val, a.window, a.horizon)]
    mean, std = parts[0][0].mean(axis=0), parts[0][0].std(axis=0)
    (xt, yt), (xv, yv), (xs, ys) = [(torch.from_numpy((x - mean) / std), torch.from_numpy(y))
                                    for x, y in parts]
    model = Forecaster(a.units)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.MSELoss()
    gen = torch.Generator().manual_seed(a.seed)
    seconds = 0.0
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = torch.randperm(xt.shape[0], generator=gen)
        total, steps = 0.0, 0
        t0 = time.perf_counter()
        for s in range(0, xt.shape[0], a.batch_size):
            idx = order[s:s + a.batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss)
            steps += 1
        seconds += time.perf_counter() - t0
        model.eval()
        print(json.dumps({"epoch": epoch, "train_loss": total / steps,
                          "val_loss": mse(model, xv, yv)}))
    test_mse = mse(model, xs, ys)
    print(json.dumps({"samples_per_s": a.epochs * xt.shape[0] / seconds, "seconds": seconds,
                      "test_mse": test_mse, "test_r2": 1.0 - test_mse / float(ys.var(unbiased=False)),
                      "train_windows": xt.shape[0], "epochs": a.epochs}))


if __name__ == "__main__":
    main(sys.argv[1:])
