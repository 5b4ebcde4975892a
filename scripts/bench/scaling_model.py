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
    return {k: median_figures(v) | {"servers": k[1]} for k, v in runs.items()}


def median_figures(runs):
    return {f: statistics.median(x[f] for x in runs) for f in runs[0]} | {"n": len(runs)}


# Requests the busiest server handles per worker step, whatever S: every worker sends every
# server its share of each tensor. Sparse: the rows tensor and the bias, a push and a pull each;
# dense: one tensor, a push and a pull.
REQUESTS = {"sparse": 4, "dense": 2}


def split_server_time(m, model, servers, f):
    """v, the servers' time per worker step that their share of the keys or values decides: the
    measured busy time a (summed over the S servers) less the fixed cost f of each request."""
    return max(0.0, m["a"] - REQUESTS[model] * servers * f)


def step_ms(m, model, workers, servers, gbit, latency_us, f, overlap):
    """The model: a worker step's time in ms for W workers, S servers, links of gbit Gbit/s.

    Each server holds 1/S of the model, so it receives W*up/S bytes and sends W*down/S per
    clock, and spends W*(q*f + v/S) ms on its requests: q requests per worker, each with a fixed
    cost f, and 1/S of the keys' or values' work v. A worker's own link carries up and down;
    links are full duplex.
      serial  (BSP as pstrain runs it: push, the servers' apply, then the pull's reply)
              T = c + up*k*8/L + W*(q*f + v/S) + down*k*8/L + 2*lat
      overlap (communication hidden behind compute, the pipelining target)
              T = max(c, max(up, down)*k*8/L + W*(q*f + v/S)) + 2*lat
    with k = max(1, W/S), the share of the busiest link, and L the link rate in bit/s."""
    k = max(1.0, workers / servers)
    per_bit_ms = 1e3 / (gbit * 1e9)
    up, down = m["up"] * 8 * k * per_bit_ms, m["down"] * 8 * k * per_bit_ms
    v = split_server_time(m, model, m["servers"], f)
    server = workers * (REQUESTS[model] * f + v / servers)
    lat = 2 * latency_us / 1e3
    if overlap:
        return max(m["c"], max(up, down) + server) + lat
    return m["c"] + up + server + down + lat


def request_cost(meas):
    """f, the servers' fixed cost per request (ms), from sparse 1 + 1 runs at two batch sizes:
    a = q*f + v with v proportional to the bytes a step moves, so two runs give f."""
    big = [m for (model, s, _), m in meas.items() if model == "sparse" and s == 1]
    small = [m for (model, _, _), m in meas.items() if model == "sparse-batch32"]
    if not big or not small:
        return 0.0
    a_big = statistics.median(m["a"] for m in big)
    a_small = statistics.median(m["a"] for m in small)
    ratio = statistics.median(m["up"] + m["down"] for m in small) / statistics.median(
        m["up"] + m["down"] for m in big)
    return max(0.0, (a_small - ratio * a_big) / (REQUESTS["sparse"] * (1 - ratio)))


def si(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return "%.3g%s" % (x / scale, unit)
    return "%.3g" % x


def print_measured(meas):
    print("Measured (medians over repeats; per worker step; server figures summed over servers)")
    print("%-14s %-4s %6s %3s %8s %8s %8s %8s %9s %9s %8s %8s %9s %9s" % (
        "model", "S+W", "Gbit/s", "n", "step ms", "compute", "pull wt", "push wt", "bytes up",
        "bytes dn", "us/push", "us/pull", "srv ms/st", "rate/s"))
    for (model, s, g), m in sorted(meas.items()):
        print("%-14s %-4s %6g %3d %8.3f %8.3f %8.3f %8.3f %9.0f %9.0f %8.1f %8.1f %9.3f %9.0f" % (
            model, "%d+%d" % (s, s), g, m["n"], m["step_ms"], m["c"], m["pull_wait"],
            m["push_wait"], m["up"], m["down"], m["push_us"], m["pull_us"], m["a"], m["rate"]))


def print_model(args, inputs, f):
    print()
    print("Model (per worker step; W workers, S servers, every host one full-duplex link of L "
          "bit/s, one-way latency lat = %g us):" % args.latency_us)
    print("  serial:  T = c + up*k*8/L + W*(q*f + v/S) + down*k*8/L + 2*lat   (BSP as pstrain "
          "runs it now: push, apply, then the pull's reply)")
    print("  overlap: T = max(c, max(up, down)*k*8/L + W*(q*f + v/S)) + 2*lat (communication "
          "hidden behind compute)")
    print("  k = max(1, W/S): the busiest link carries k workers' bytes (a server's link is "
          "shared by the shares of all W workers); W*(q*f + v/S): the busiest server's time per "
          "clock")
    print("  throughput = W * batch / T")
    print("Measured inputs (1 server + 1 worker, medians over every link rate and repeat): "
          "c = compute per step, up/down = wire bytes a worker sends/receives per step, "
          "batch = rows per step, a = server busy time per worker step (receive, decode, apply, "
          "reply) = q*f + v; f = %.4f ms, the fixed cost of a request, from the sparse runs at "
          "batch 256 and 32; q = requests per server per worker step (sparse 4: rows and bias, "
          "push and pull; dense 2)." % f)
    for model, m in inputs.items():
        print("  %-6s c %.3f ms  a %.3f ms  v %.3f ms  q %d  up %.0f B  down %.0f B  batch %.0f"
              % (model, m["c"], m["a"], split_server_time(m, model, 1, f), REQUESTS[model],
                 m["up"], m["down"], m["batch"]))
    print("Assumed: keys and ranges spread evenly over servers; a server handles its requests "
          "one at a time; bytes per step do not change with S (headers are small); every worker "
          "computes at the measured rate (no stragglers, no time-sharing of cores); only host "
          "links limit the network. Latency: %s." % (
              "emulated with netem on every link" if args.netem else
              "netem is missing on this kernel: the measured links add none; 2*lat is added by "
              "the model only"))


def print_projection(args, inputs, links, f):
    for model, m in inputs.items():
        for g in links:
            print()
            print("Projected %s, %s, %g Gbit/s links: serial / overlap" % (
                UNITS[model], model, g))
            print("%6s" % "W \\ S" + "".join("%18d" % s for s in SERVERS))
            for w in WORKERS:
                cells = []
                for s in SERVERS:
                    t = [step_ms(m, model, w, s, g, args.latency_us, f, o) for o in (False, True)]
                    rates = tuple(si(w * m["batch"] / x * 1e3) for x in t)
                    cells.append("%18s" % ("%s / %s" % rates))
                print("%6d" % w + "".join(cells))


def print_check(args, meas, inputs, links, f):
    lat = args.latency_us if args.netem else 0.0
    print()
    print("Model check (step ms, serial model, lat %g us as on the measured links):" % lat)
    print("%-6s %-4s %6s %9s %16s %6s %16s %6s" % ("model", "S+W", "Gbit/s", "measured",
                                                 "from 1+1 inputs", "ratio", "from its own",
                                                 "ratio"))
    for model in inputs:
        for shape in (1, 2):
            for g in links:
                m = meas.get((model, shape, g))
                if not m:
                    continue
                p1 = step_ms(inputs[model], model, shape, shape, g, lat, f, False)
                p2 = step_ms(m, model, shape, shape, g, lat, f, False)
                print("%-6s %-4s %6g %9.3f %16.3f %6.2f %16.3f %6.2f" % (
                    model, "%d+%d" % (shape, shape), g, m["step_ms"], p1, p1 / m["step_ms"], p2,
                    p2 / m["step_ms"]))
    print("'from 1+1 inputs' is the projection; 'from its own' feeds the model the run's own "
          "compute, server time and bytes, so it tests the model's form apart from the inputs. "
          "The 4 ranks of a 2 + 2 run share %d cores (and this machine's other load), which "
          "inflates their compute and server time and adds waits for the slower worker at every "
          "BSP clock: that is why 2 + 2 is the check and the projection comes from 1 + 1." %
          args.cores)


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
    links = sorted({g for (model, _, g) in meas if model in UNITS})
    inputs = {}
    for model in UNITS:
        runs = [m for (name, s, _), m in meas.items() if name == model and s == 1]
        if runs:
            inputs[model] = median_figures(runs) | {"servers": 1}
    f = request_cost(meas)
    print()
    print("pstrain scaling harness: %d cores; load average %s before, %s after (the machine is "
          "shared: figures are noisy)" % (args.cores, args.load_before, args.load_after))
    print_measured(meas)
    print_model(args, inputs, f)
    print_projection(args, inputs, links, f)
    print_check(args, meas, inputs, links, f)


if __name__ == "__main__":
    main()
