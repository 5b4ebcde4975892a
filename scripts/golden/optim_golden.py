#!/usr/bin/python3
"""Golden numbers for tests/optim_test.c: optimizer steps run by PyTorch (and, for AdaBelief and
Lookahead, by numpy from the published formulas) on a fixed 5-element w with fixed gradients.

Hyperparameters are rounded to float32 first, so the reference does the same arithmetic as the C
code on the same inputs; the reference itself runs in float64. Prints C initialisers.
"""
import numpy as np
import torch

W0 = [0.5, -1.2, 2.0, -0.3, 1.5]
GRADS = [  # one row per step
    [0.1, -0.2, 0.3, 0.0, -0.5],
    [0.4, 0.1, -0.6, 0.2, -0.1],
    [-0.3, 0.25, 0.5, -0.7, 0.05],
    [0.2, -0.4, 0.1, 0.3, 0.6],
    [-0.1, 0.3, -0.2, 0.05, -0.35],
    [0.05, -0.15, 0.45, -0.25, 0.2],
    [0.3, 0.2, -0.1, 0.4, -0.3],
    [-0.2, -0.05, 0.15, -0.1, 0.25],
]
N_STEPS = len(GRADS)
CHECK_AFTER = (3, 8)


def f32(x):
    return float(np.float32(x))


def lr_at(base, grow, t):
    """The learning rate of step t (0-based): constant, or growing by a quarter per step."""
    return f32(f32(base) * (1.0 + 0.25 * t)) if grow else f32(base)


def torch_factory(kind, c):
    b = (f32(c["beta1"]), f32(c["beta2"]))
    eps, wd, mu = f32(c["eps"]), f32(c["wd"]), f32(c["momentum"])
    if kind == "sgd":
        return lambda p: torch.optim.SGD(p, lr=1.0, weight_decay=wd)
    if kind == "momentum":
        return lambda p: torch.optim.SGD(p, lr=1.0, momentum=mu, weight_decay=wd)
    if kind == "nesterov":
        return lambda p: torch.optim.SGD(p, lr=1.0, momentum=mu, nesterov=True, weight_decay=wd)
    if kind == "adam":
        return lambda p: torch.optim.Adam(p, lr=1.0, betas=b, eps=eps, weight_decay=wd)
    if kind == "adamw":
        return lambda p: torch.optim.AdamW(p, lr=1.0, betas=b, eps=eps, weight_decay=wd)
    if kind == "radam":
        return lambda p: torch.optim.RAdam(p, lr=1.0, betas=b, eps=eps, weight_decay=wd)
    if kind == "adagrad":
        return lambda p: torch.optim.Adagrad(p, lr=1.0, eps=eps, weight_decay=wd)
    return None


class Belief:
    """AdaBelief, Algorithm 2 of Zhuang et al. 2020, L2 weight decay, no rectification."""

    def __init__(self, c):
        self.b1, self.b2 = f32(c["beta1"]), f32(c["beta2"])
        self.eps, self.wd = f32(c["eps"]), f32(c["wd"])
        self.m = np.zeros(len(W0))
        self.s = np.zeros(len(W0))
        self.t = 0

    def step(self, w, g, lr):
        self.t += 1
        d = g + self.wd * w
        self.m = self.b1 * self.m + (1 - self.b1) * d
        self.s = self.b2 * self.s + (1 - self.b2) * (d - self.m) ** 2 + self.eps
        m_hat = self.m / (1 - self.b1**self.t)
        s_hat = self.s / (1 - self.b2**self.t)
        return w - lr * m_hat / (np.sqrt(s_hat) + self.eps)


class TorchInner:
    def __init__(self, kind, c):
        self.p = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
        self.opt = torch_factory(kind, c)([self.p])

    def step(self, w, g, lr):
        with torch.no_grad():
            self.p.copy_(torch.tensor(w))
        self.p.grad = torch.tensor(g, dtype=torch.float64)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        return self.p.detach().numpy().copy()


def run(case):
    kind, c = case["kind"], case["cfg"]
    inner = Belief(c) if kind == "adabelief" else TorchInner(kind, c)
    k, alpha = c.get("lookahead_k", 0), f32(c.get("lookahead_alpha", 0.5))
    w = np.array(W0, dtype=np.float32).astype(np.float64)  # the C test's float inputs
    slow = w.copy()
    out = {}
    for t in range(N_STEPS):
        g = np.array(GRADS[t], dtype=np.float32).astype(np.float64)
        w = inner.step(w, g, lr_at(case["lr"], case["grow"], t))
        if k > 0 and (t + 1) % k == 0:  # Lookahead, Zhang et al. 2019: slow += alpha (fast - slow)
            slow = slow + alpha * (w - slow)
            w = slow.copy()
        if t + 1 in CHECK_AFTER:
            out[t + 1] = w.copy()
    return out


DEFAULT = dict(momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0)


def case(name, kind, lr, grow=False, **over):
    cfg = dict(DEFAULT)
    cfg.update(over)
    return dict(name=name, kind=kind, lr=lr, grow=grow, cfg=cfg)


CASES = [
    case("sgd", "sgd", 0.1),
    case("sgd_wd", "sgd", 0.1, wd=0.05),
    case("momentum", "momentum", 0.1),
    case("momentum_wd_grow", "momentum", 0.1, grow=True, wd=0.05, momentum=0.8),
    case("nesterov", "nesterov", 0.1),
    case("nesterov_wd", "nesterov", 0.1, wd=0.05),
    case("adam", "adam", 0.05),
    case("adam_wd_eps", "adam", 0.05, wd=0.1, eps=1e-2, beta1=0.8, beta2=0.99),
    case("adam_grow", "adam", 0.05, grow=True),
    case("adamw", "adamw", 0.05, wd=0.1),
    case("adamw_eps", "adamw", 0.05, wd=0.5, eps=1e-2),
    case("radam", "radam", 0.05),
    case("radam_wd_eps", "radam", 0.05, wd=0.1, eps=1e-2, beta2=0.99),
    case("adagrad", "adagrad", 0.1, eps=1e-10),
    case("adagrad_wd_eps", "adagrad", 0.1, wd=0.1, eps=1e-1),
    case("adabelief", "adabelief", 0.05, eps=1e-16),
    case("adabelief_wd_eps", "adabelief", 0.05, wd=0.1, eps=1e-3, beta2=0.99),
    case("lookahead_sgd", "momentum", 0.1, lookahead_k=3, lookahead_alpha=0.5),
    case("lookahead_adam", "adam", 0.05, lookahead_k=2, lookahead_alpha=0.3),
]

KIND_ENUM = {
    "sgd": "PST_OPT_SGD",
    "momentum": "PST_OPT_MOMENTUM",
    "nesterov": "PST_OPT_NESTEROV",
    "adam": "PST_OPT_ADAM",
    "adamw": "PST_OPT_ADAMW",
    "radam": "PST_OPT_RADAM",
    "adabelief": "PST_OPT_ADABELIEF",
    "adagrad": "PST_OPT_ADAGRAD",
}


def cf(x):
    """A C float literal: 0.5f, 1e-08f, 0.0f."""
    s = "%.9g" % x
    return s + ("f" if ("." in s or "e" in s) else ".0f")


def c_floats(xs):
    return "{" + ", ".join(cf(x) for x in xs) + "}"


def c_doubles(xs):
    return "{" + ", ".join("%.12g" % x for x in xs) + "}"


def print_cases():
    for cs in CASES:
        c, out = cs["cfg"], run(cs)
        print("    {\"%s\"," % cs["name"])
        print("     {.kind = %s, .momentum = %s, .beta1 = %s, .beta2 = %s, .eps = %s,"
              % (KIND_ENUM[cs["kind"]], cf(c["momentum"]), cf(c["beta1"]), cf(c["beta2"]),
                 cf(c["eps"])))
        print("      .weight_decay = %s, .lookahead_k = %d, .lookahead_alpha = %s},"
              % (cf(c["wd"]), c.get("lookahead_k", 0), cf(c.get("lookahead_alpha", 0.5))))
        print("     %s, %d," % (cf(cs["lr"]), int(cs["grow"])))
        print("     %s," % c_doubles(out[3]))
        print("     %s}," % c_doubles(out[8]))


def print_clipping():
    g = torch.tensor([3.0, -4.0, 0.5, 12.0, -0.25], dtype=torch.float64)
    norm = torch.nn.utils.clip_grad_norm_([_as_param(g)], max_norm=5.0)
    print("/* clip_grad_norm_(max_norm=5): norm %.12g, clipped %s */" % (norm, c_doubles(_LAST.grad)))
    g = torch.tensor([3.0, -4.0, 0.5, 12.0, -0.25], dtype=torch.float64)
    torch.nn.utils.clip_grad_value_([_as_param(g)], clip_value=1.0)
    print("/* clip_grad_value_(1): %s */" % c_floats(_LAST.grad))


_LAST = None


def _as_param(grad):
    global _LAST
    _LAST = torch.zeros_like(grad, requires_grad=True)
    _LAST.grad = grad.clone()
    return _LAST


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    print("/* torch %s, numpy %s */" % (torch.__version__, np.__version__))
    print_cases()
    print_clipping()
