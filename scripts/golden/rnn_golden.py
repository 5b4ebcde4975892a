#!/usr/bin/python3
"""Golden numbers for tests/unit/rnn_test.c: torch.nn.LSTM and torch.nn.GRU (float64) over a fixed
batch of sequences, with the weights pstrain's layout holds (W (gates x units, features + units):
input columns then recurrent ones; b: lstm's 4 units on the input side, gru's r, z, n on the input
side then n on the recurrent side). Parameter k of the layer is 0.5 sin(0.7 k + 0.3), input value
k is cos(0.37 k), both rounded to float32 first. Prints C initialisers of every step's state.
"""
import math

import numpy as np
import torch

B, T, F, H = 2, 4, 3, 3


def f32(v):
    return float(np.float32(v))


def run(kind):
    gates = 4 if kind == "lstm" else 3
    n_w, n_b = gates * H * (F + H), 4 * H
    p = np.array([f32(0.5 * math.sin(0.7 * k + 0.3)) for k in range(n_w + n_b)])
    w = p[:n_w].reshape(gates * H, F + H)
    b = p[n_w:]
    x = np.array([f32(math.cos(0.37 * k)) for k in range(B * T * F)]).reshape(B, T, F)
    m = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(F, H, batch_first=True).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(w[:, :F]))
        m.weight_hh_l0.copy_(torch.from_numpy(w[:, F:]))
        if kind == "lstm":
            m.bias_ih_l0.copy_(torch.from_numpy(b))
            m.bias_hh_l0.zero_()
        else:
            m.bias_ih_l0.copy_(torch.from_numpy(b[:3 * H]))
            m.bias_hh_l0.copy_(torch.from_numpy(np.concatenate([np.zeros(2 * H), b[3 * H:]])))
        out, _ = m(torch.from_numpy(x))
    return out.numpy().reshape(-1)


for kind in ("lstm", "gru"):
    vals = ", ".join("%.12g" % v for v in run(kind))
    print("static const double GOLDEN_%s[%d] = {%s};" % (kind.upper(), B * T * H, vals))
