"""DP-SGD in PyTorch with per-example clipping written out by hand: the peer of pstrain's
train.dp.* runs in scripts/bench/dpsgd.sh.

The MLP's per-example gradients come from the gradients of the summed loss with respect to each
layer's pre-activations z (row i of dL/dz is example i's own, because the sum separates): a dense
layer's weight gradient for example i is the outer product dz_i a_i^T, so its squared norm is
|dz_i|^2 |a_i|^2 and its bias gradient's |dz_i|^2. Each example's whole gradient is scaled by
min(1, C / norm_i), the scaled rows summed (dz^T diag(c) a), N(0, sigma^2 C^2) added to every
coordinate, and the sum divided by the expected batch size, as pstrain does. Batches are Poisson
samples (each row with probability q = batch / n), one step per batch, ceil(n / batch) steps an
epoch. check_per_example() compares the clipped sum with a plain loop over examples.

usage: dpsgd_torch.py TRAIN.csv TEST.csv --hidden 64 --epochs E --batch B --lr LR --seed S
                      [--sigma SIGMA --clip C]      (no --sigma: ordinary training, shuffled)
Prints one JSON line: test accuracy, training seconds, steps.
"""
import argparse
import json
import math
import time

import numpy as np
import torch

torch.set_num_threads(1)


def load(path):
    d = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float32)
    return d[:, :-1], d[:, -1].astype(np.int64)


class MLP:
    def __init__(self, sizes, seed):
        torch.manual_seed(seed)
        self.layers = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
        self.params = [p for l in self.layers for p in (l.weight, l.bias)]

    def forward(self, x):
        """Logits, and every layer's input a and pre-activation z."""
        acts, zs = [], []
        a = x
        for k, layer in enumerate(self.layers):
            acts.append(a)
            z = layer(a)
            zs.append(z)
            a = torch.relu(z) if k + 1 < len(self.layers) else z
        return a, acts, zs


def clipped_sum(model, x, y, clip):
    """Sum over the batch of each example's gradient clipped to L2 norm clip, per parameter."""
    logits, acts, zs = model.forward(x)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
    dzs = torch.autograd.grad(loss, zs)
    sq = torch.zeros(x.shape[0])
    for a, dz in zip(acts, dzs):
        dz2 = (dz * dz).sum(1)
        sq += dz2 * (a * a).sum(1) + dz2
    scale = torch.clamp(clip / torch.sqrt(sq).clamp_min(1e-12), max=1.0)
    grads = []
    for a, dz in zip(acts, dzs):
        sdz = dz * scale[:, None]
        grads += [sdz.t() @ a, sdz.sum(0)]
    return [g.detach() for g in grads]


def check_per_example(model, x, y, clip):
    """Max difference between clipped_sum and a loop of one-example backward passes."""
    fast = clipped_sum(model, x, y, clip)
    slow = [torch.zeros_like(p) for p in model.params]
    for i in range(x.shape[0]):
        logits, _, _ = model.forward(x[i : i + 1])
        loss = torch.nn.functional.cross_entropy(logits, y[i : i + 1], reduction="sum")
        g = torch.autograd.grad(loss, model.params)
        norm = math.sqrt(sum(float((t * t).sum()) for t in g))
        for s, t in zip(slow, g):
            s += t * min(1.0, clip / norm)
    return max(float((a - b).abs().max()) for a, b in zip(fast, slow))


def accuracy(model, x, y):
    with torch.no_grad():
        logits, _, _ = model.forward(x)
    return float((logits.argmax(1) == y).float().mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigma", type=float)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--check", action="store_true", help="also compare clipping with a loop")
    args = ap.parse_args()

    xtr, ytr = load(args.train)
    xte, yte = load(args.test)
    mean, std = xtr.mean(0), xtr.std(0)
    std[std == 0] = 1.0
    xtr, xte = torch.tensor((xtr - mean) / std), torch.tensor((xte - mean) / std)
    ytr, yte = torch.tensor(ytr), torch.tensor(yte)
    n, d = xtr.shape
    k = int(ytr.max()) + 1
    model = MLP([d, args.hidden, k], args.seed)
    opt = torch.optim.Adam(model.params, lr=args.lr)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    steps = math.ceil(n / args.batch)
    q = args.batch / n
    out = {}
    if args.check and args.sigma is not None:
        out["check_max_diff"] = check_per_example(model, xtr[:32], ytr[:32], args.clip)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        order = rng.permutation(n)
        for s in range(steps):
            if args.sigma is None:
                idx = torch.tensor(order[s * args.batch : (s + 1) * args.batch])
                logits, _, _ = model.forward(xtr[idx])
                loss = torch.nn.functional.cross_entropy(logits, ytr[idx])
                grads = torch.autograd.grad(loss, model.params)
            else:
                idx = torch.tensor(np.nonzero(rng.random(n) < q)[0])
                if len(idx) > 0:
                    sums = clipped_sum(model, xtr[idx], ytr[idx], args.clip)
                else:
                    sums = [torch.zeros_like(p) for p in model.params]
                grads = [
                    (g + args.sigma * args.clip * torch.randn(g.shape, generator=gen)) / args.batch
                    for g in sums
                ]
            for p, g in zip(model.params, grads):
                p.grad = g.detach().clone()
            opt.step()
    out.update(
        accuracy=accuracy(model, xte, yte),
        seconds=time.perf_counter() - t0,
        steps=steps * args.epochs,
        q=q,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
