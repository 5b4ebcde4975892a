"""Epsilon of DP-SGD (the subsampled Gaussian mechanism) from its definition, in high precision.

An accountant written apart from common/fed/dpacct.c, to check its figures: the RDP of one step at
order alpha is log(A) / (alpha - 1) with A = E_{z ~ N(0, sigma^2)}[((1 - q) + q exp((2z - 1) /
(2 sigma^2)))^alpha] (Mironov, Talwar, Zhang 2019). Integer orders expand the power exactly (a
finite binomial sum); fractional orders integrate the expectation numerically (mpmath.quad), not
through the series the C code sums. Epsilon = min over orders of rdp x steps + log(1/delta) /
(alpha - 1), over the same orders as the C accountant.
"""
import mpmath as mp

mp.mp.dps = 25


def default_orders():
    orders = [x / 10 for x in range(11, 110) if x % 10 != 0] + [1.25, 1.75, 2.25]
    orders += list(range(2, 257))
    return sorted(orders)


def _log_a_int(q, sigma, alpha):
    q, s2 = mp.mpf(q), mp.mpf(sigma) ** 2
    total = mp.mpf(0)
    for k in range(alpha + 1):
        total += mp.binomial(alpha, k) * (1 - q) ** (alpha - k) * q ** k * mp.exp((k * k - k) / (2 * s2))
    return mp.log(total)


def _log_a_frac(q, sigma, alpha):
    q, sigma, alpha = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)
    s2 = sigma * sigma

    def integrand(z):
        density = mp.exp(-z * z / (2 * s2)) / (sigma * mp.sqrt(2 * mp.pi))
        return density * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * s2))) ** alpha

    # The mass sits near 0 (the 1-q part) and near alpha (the tilted part): split there.
    points = [-mp.inf, -10 * sigma, 0, alpha / 2, alpha, alpha + 10 * sigma, mp.inf]
    return mp.log(mp.quad(integrand, points))


def rdp_step(q, sigma, alpha):
    if q == 0:
        return 0.0
    if q == 1:
        return alpha / (2 * sigma * sigma)
    if float(alpha).is_integer():
        log_a = _log_a_int(q, sigma, int(alpha))
    else:
        log_a = _log_a_frac(q, sigma, alpha)
    return float(log_a / (mp.mpf(alpha) - 1))


class Accountant:
    """RDP per order for a fixed (q, sigma); epsilon after any number of steps."""

    def __init__(self, q, sigma, orders=None):
        self.orders = orders or default_orders()
        self.step = [rdp_step(q, sigma, a) for a in self.orders]

    def epsilon(self, steps, delta):
        best = min(steps * r + mp.log(1 / mp.mpf(delta)) / (a - 1) for a, r in zip(self.orders, self.step))
        return max(float(best), 0.0)


if __name__ == "__main__":
    import sys
    q, sigma, steps, delta = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    print(Accountant(q, sigma).epsilon(steps, delta))
