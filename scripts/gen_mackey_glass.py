#!/usr/bin/env python3
"""Writes the Mackey-Glass time series as CSV (t,value): the chaotic benchmark series of
M. C. Mackey and L. Glass, "Oscillation and chaos in physiological control systems",
Science 197 (1977) 287-289, with the customary parameters beta 0.2, gamma 0.1, n 10, tau 17
(chaotic), x(t) = 1.2 for t <= 0. Integrated with fourth-order Runge-Kutta at step 0.1, the delayed
term read from the stored history (linear interpolation at the half steps), sampled every time
unit after a transient of 500. No randomness: the same arguments give the same bytes.

usage: gen_mackey_glass.py [ROWS [TAU]] > mackey_glass.csv   (defaults 2000 rows, tau 17)
"""
import sys

BETA, GAMMA, N, DT = 0.2, 0.1, 10, 0.1


def rhs(x, x_tau):
    return BETA * x_tau / (1.0 + x_tau ** N) - GAMMA * x


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    tau = float(sys.argv[2]) if len(sys.argv) > 2 else 17.0
    lag = int(round(tau / DT))
    per_unit = int(round(1.0 / DT))
    transient = 500 * per_unit
    hist = [1.2] * (lag + 1)  # x at steps -lag..0
    out = sys.stdout
    out.write("t,value\n")
    step = 0
    while True:
        x = hist[-1]
        d0, dh = hist[-1 - lag], hist[-lag]  # x(t - tau), x(t - tau + dt)
        dm = 0.5 * (d0 + dh)
        k1 = rhs(x, d0)
        k2 = rhs(x + 0.5 * DT * k1, dm)
        k3 = rhs(x + 0.5 * DT * k2, dm)
        k4 = rhs(x + DT * k3, dh)
        hist.append(x + DT / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))
        if len(hist) > lag + 2:
            hist.pop(0)
        step += 1
        if step >= transient and (step - transient) % per_unit == 0:
            i = (step - transient) // per_unit
            if i >= rows:
                break
            out.write("%d,%.6f\n" % (i, hist[-1]))


if __name__ == "__main__":
    main()
