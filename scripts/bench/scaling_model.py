#!/usr/bin/env python3
"""The projection of scripts/bench/scaling.sh: from the per-step figures its runs measured
(report.json comm.step and comm.server), training throughput for W workers and S servers on links
of a given rate, the model printed beside the numbers, and the model checked against the measured
2 servers + 2 workers point.

usage: scaling_model.py RESULTS.jsonl --latency-us US --netem 0|1 --cores N
                        --load-before "L1 L5 L15" --load-after "L1 L5 L15"
RESULTS.jsonl: one line per run: model, servers, workers, gbit, repeat, report (a report.json).
"""
import argparse
import json
import statistics

WORKERS = [1, 2, 4, 8, 16, 32, 64]
SERVERS = [1, 2, 4, 8]
UNITS = {"sparse": "rows/s", "dense": "samples/s"}


def figures(report):
    """The model's inputs from one run's report: per worker step."""
    comm = report["comm"]
    step, server = comm["step"], comm["server"]
    rows = report["train"]["rows"]  # summed over workers, as steps are
    return {
        "step_ms": step["step_ms"],
        "c": step["compute_ms"],
        "pull_wait": step["pull_wait_ms"],
        "push_wait": step["push_wait_ms"],
        "up": step["bytes_sent"],
        "down": step["bytes_received"],
        "push_us": server["push_us"],
        "pull_us": server["pull_us"],
        "a": server["busy_ms_per_step"],
        "batch": rows / step["steps"],
        "rate": report["train"]["samples_per_s"],
    }


def load(path):
    """Medians over repeats: {(model, servers, gbit): figures}."""
    runs = {}
    for line in open(path):
        r = json.loads(line)
        key = (r["model"], r["servers"], r["gbit"])
        runs.setdefault(key, []).append(figures(json.load(open(r["report"]))))
    return {k: {f: statistics.median(x[f] for x in v) for f in v[0]} | {"n": len(v)}
            for k, v in runs.items()}


def step_ms(m, workers, servers, gbit, latency_us, overlap):
    """The model: a worker step's time in ms for W workers, S servers, links of gbit Gbit/s.

    Each server holds 1/S of the model, so it receives W*up/S bytes, sends W*down/S and spends
    W*a/S ms per clock; a worker's own link carries up and down. A link is full duplex.
      serial  (BSP as pstrain runs it: push, the servers' apply, then the pull's reply)
              T = c + up*k*8/L + a*W/S + down*k*8/L + 2*lat
      overlap (communication hidden behind compute, the pipelining target)
              T = max(c, max(up, down)*k*8/L + a*W/S) + 2*lat
    with k = max(1, W/S), the share of the busiest link, and L the link rate in bit/s."""
    k = max(1.0, workers / servers)
    per_bit_ms = 1e3 / (gbit * 1e9)
    up, down = m["up"] * 8 * k * per_bit_ms, m["down"] * 8 * k * per_bit_ms
    server = m["a"] * workers / servers
    lat = 2 * latency_us / 1e3
    if overlap:
        return max(m["c"], max(up, down) + server) + lat
    return m["c"] + up + server + down + lat


def si(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return "%.3g%s" % (x / scale, unit)
    return "%.3g" % x


def print_measured(meas):
    print("Measured (medians over repeats; per worker step; server figures summed over servers)")
    print("%-6s %-5s %6s %8s %8s %8s %8s %10s %10s %8s %8s %9s %10s" % (
        "model", "S+W", "Gbit/s", "step ms", "compute", "pull wt", "push wt", "bytes up",
        "bytes dn", "us/push", "us/pull", "srv ms/st", "rate/s"))
    for (model, s, g), m in sorted(meas.items()):
        print("%-6s %-5s %6g %8.3f %8.3f %8.3f %8.3f %10.0f %10.0f %8.1f %8.1f %9.3f %10.0f" % (
            model, "%d+%d" % (s, s), g, m["step_ms"], m["c"], m["pull_wait"], m["push_wait"],
            m["up"], m["down"], m["push_us"], m["pull_us"], m["a"], m["rate"]))


def print_model(args, inputs):
    lat = args.latency_us
    print()
    print("Model (per worker step; W workers, S servers, every host one link of L bit/s, "
          "one-way latency %g us):" % lat)
    print("  serial:  T = c + up*k*8/L + a*W/S + down*k*8/L + 2*lat   (BSP as pstrain runs it now)")
    print("  overlap: T = max(c, max(up, down)*k*8/L + a*W/S) + 2*lat (communication hidden)")
    print("  k = max(1, W/S): the busiest link carries k workers' bytes (a server link is shared "
          "by its W/S workers' shares)")
    print("  throughput = W * batch / T")
    print("Measured inputs (1 server + 1 worker at the fastest link): c = compute per step, "
          "a = servers' busy time per worker step (receive, decode, apply, reply), up/down = wire "
          "bytes a worker sends/receives per step, batch = rows per step:")
    for model, m in inputs.items():
        print("  %-6s c %.3f ms  a %.3f ms  up %.0f B  down %.0f B  batch %.0f" % (
            model, m["c"], m["a"], m["up"], m["down"], m["batch"]))
    print("Assumed: keys and ranges spread evenly over servers; a server handles requests one at a "
          "time, so its time per clock grows with W/S; per-request costs and bytes per step do not "
          "change with S; every worker computes at the measured rate (no stragglers); the "
          "network core is not a bottleneck, only host links. Latency: %s." % (
              "emulated with netem on every link" if args.netem else
              "netem is missing on this kernel: the measured links add none; 2*lat is added by "
              "the model only"))


def print_projection(args, inputs, links):
    for model, m in inputs.items():
        for g in links:
            print()
            print("Projected %s, %s, %g Gbit/s links: serial / overlap" % (
                UNITS[model], model, g))
            print("%6s" % "W \\ S" + "".join("%18d" % s for s in SERVERS))
            for w in WORKERS:
                cells = []
                for s in SERVERS:
                    t = [step_ms(m, w, s, g, args.latency_us, o) for o in (False, True)]
                    cells.append("%18s" % ("%s / %s" % tuple(si(w * m["batch"] / x * 1e3)
                                                          for x in t)))
                print("%6d" % w + "".join(cells))


def print_check(args, meas, inputs, links):
    lat = args.latency_us if args.netem else 0.0
    print()
    print("Model check at 2 servers + 2 workers (step ms, serial model; lat %g us as on the "
          "measured links):" % lat)
    print("%-6s %6s %9s %17s %7s %17s %7s" % ("model", "Gbit/s", "measured", "from 1+1 inputs",
                                             "ratio", "from its own", "ratio"))
    for model in inputs:
        for g in links:
            m2 = meas.get((model, 2, g))
            if not m2:
                continue
            p1 = step_ms(inputs[model], 2, 2, g, lat, False)
            p2 = step_ms(m2, 2, 2, g, lat, False)
            print("%-6s %6g %9.3f %17.3f %7.2f %17.3f %7.2f" % (
                model, g, m2["step_ms"], p1, p1 / m2["step_ms"], p2, p2 / m2["step_ms"]))
    print("'from 1+1 inputs' projects the 1 server + 1 worker figures; 'from its own' feeds the "
          "model the 2 + 2 run's own compute, server time and bytes, so it tests the model's form "
          "apart from the machine: the 4 ranks of a 2 + 2 run share %d cores, so its compute and "
          "server time are inflated by CPU sharing (why the projection exists), and a ratio "
          "below 1 in the first column is that." % args.cores)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--latency-us", type=float, required=True)
    ap.add_argument("--netem", type=int, choices=(0, 1), required=True)
    ap.add_argument("--cores", type=int, required=True)
    ap.add_argument("--load-before", required=True)
    ap.add_argument("--load-after", required=True)
    args = ap.parse_args()
    meas = load(args.results)
    links = sorted({g for (_, _, g) in meas})
    inputs = {model: meas[(model, 1, links[-1])] for model in ("sparse", "dense")
              if (model, 1, links[-1]) in meas}
    print()
    print("pstrain scaling harness: %d cores; load average %s before, %s after (the machine is "
          "shared: figures are noisy)" % (args.cores, args.load_before, args.load_after))
    print_measured(meas)
    print_model(args, inputs)
    print_projection(args, inputs, links)
    print_check(args, meas, inputs, links)


if __name__ == "__main__":
    main()
