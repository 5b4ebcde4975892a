#!/usr/bin/env python3
"""Reads a run directory's TensorBoard event files back without pstrain's code and checks them.

An independent reader: the record framing (uint64 length, masked CRC-32C of the length, data,
masked CRC-32C of the data) is parsed here with its own CRC-32C, and the Event messages with
Python code that protoc generates at test time from the same proto/ schemas (python3-protobuf).
Every record's two checksums are verified; then every number of every metrics.jsonl line must be
a scalar with the same tag at the same step, equal to the number rounded to float32 (TensorBoard
stores simple_value as a float): lines without "task" in the directory's own run (a step record's
numbers as step/NAME), a plan's task lines in the sub-run named for the task.

usage: tfevents_check.py PROTO_DIR GEN_DIR RUN_DIR   prints a JSON summary; exit 1 on a mismatch
"""
import glob
import json
import os
import re
import struct
import subprocess
import sys


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    """Yields each record's bytes; raises ValueError on a bad checksum or a truncated record."""
    blob = open(path, "rb").read()
    off = 0
    while off < len(blob):
        if len(blob) - off < 12:
            raise ValueError(f"{path}: offset {off}: truncated header")
        header = blob[off:off + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", blob[off + 8:off + 12])
        if hcrc != masked(header):
            raise ValueError(f"{path}: offset {off}: length CRC mismatch")
        body = blob[off + 12:off + 12 + length]
        if len(body) != length or len(blob) < off + 16 + length:
            raise ValueError(f"{path}: offset {off}: truncated record")
        (dcrc,) = struct.unpack("<I", blob[off + 12 + length:off + 16 + length])
        if dcrc != masked(body):
            raise ValueError(f"{path}: offset {off}: data CRC mismatch")
        yield body
        off += 16 + length


def load_modules(proto_dir, gen_dir):
    os.makedirs(gen_dir, exist_ok=True)
    subprocess.check_call(["protoc", f"--proto_path={proto_dir}", f"--python_out={gen_dir}",
                           "tensorboard.proto", "tensorboard_hparams.proto"], cwd=proto_dir)
    sys.path.insert(0, gen_dir)
    import tensorboard_pb2
    import tensorboard_hparams_pb2
    return tensorboard_pb2, tensorboard_hparams_pb2


def read_runs(run_dir, tb, hp):
    """{run name: {"scalars": {(tag, step): value}, "hparams": {...}, "files": n, ...}}."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        run = os.path.relpath(os.path.dirname(path), run_dir)
        r = runs.setdefault(run, {"scalars": {}, "histograms": {}, "files": 0, "records": 0,
                                  "hparams": {}})
        r["files"] += 1
        for i, body in enumerate(records(path)):
            ev = tb.Event()
            ev.ParseFromString(body)
            r["records"] += 1
            if i == 0:
                assert ev.WhichOneof("what") == "file_version", path
                assert ev.file_version == "brain.Event:2", ev.file_version
                continue
            for v in ev.summary.value:
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    key = (v.tag, ev.step)
                    assert key not in r["scalars"], f"{path}: {key} twice"
                    r["scalars"][key] = v.simple_value
                elif kind == "histo":
                    h = v.histo
                    assert sum(h.bucket) == h.num and len(h.bucket) == len(h.bucket_limit), v.tag
                    r["histograms"][(v.tag, ev.step)] = h.num
                elif v.metadata.plugin_data.plugin_name == "hparams":
                    d = hp.HParamsPluginData()
                    d.ParseFromString(v.metadata.plugin_data.content)
                    which = d.WhichOneof("data")
                    if which == "session_start_info":
                        r["hparams"]["start"] = {
                            e.key: getattr(e.value, e.value.WhichOneof("kind"))
                            for e in d.session_start_info.hparams}
                    elif which == "session_end_info":
                        r["hparams"]["end"] = d.session_end_info.status
                    else:
                        r["hparams"]["experiment"] = {
                            "hparams": [h.name for h in d.experiment.hparam_infos],
                            "metrics": [m.name.tag for m in d.experiment.metric_infos]}
    return runs


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def expected(run_dir):
    """The scalars metrics.jsonl promises: {run: {(tag, step): value}}, by rundir_tb's rules."""
    want = {}
    count = 0
    path = os.path.join(run_dir, "metrics.jsonl")
    for line in open(path):
        m = json.loads(line)
        label = m.get("task")
        if label is None:
            run = "."
            step = next((m[k] for k in ("step", "epoch", "round") if k in m), None)
            if step is None:
                step, count = count, count + 1
        else:
            name, _, at = label.partition(" @")
            run = re.sub(r"[^A-Za-z0-9-]", "_", name)
            step = int(at) if at else int(m.get("epochs") or 0)

        def walk(obj, prefix):
            for k, v in obj.items():
                if obj is m and k in ("step", "epoch", "round"):
                    continue
                tag = f"{prefix}/{k}" if prefix else k
                if isinstance(v, bool) or v is None or isinstance(v, (str, list)):
                    continue
                if isinstance(v, dict):
                    walk(v, tag)
                else:
                    want.setdefault(run, {})[(tag, int(step))] = f32(float(v))
        walk(m, "step" if "step" in m else "")
    return want


def main():
    proto_dir, gen_dir, run_dir = sys.argv[1:4]
    tb, hp = load_modules(proto_dir, gen_dir)
    try:
        runs = read_runs(run_dir, tb, hp)
    except ValueError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    want = expected(run_dir)
    problems = []
    for run, scalars in want.items():
        got = runs.get(run, {}).get("scalars", {})
        for key, value in scalars.items():
            if key not in got:
                problems.append(f"{run}: {key} missing")
            elif got[key] != value:
                problems.append(f"{run}: {key} = {got[key]}, metrics.jsonl {value}")
    # A distributed run's communication figures: report.json's "comm" as comm/NAME scalars at
    # the last epoch of the root run.
    report = os.path.join(run_dir, "report.json")
    comm_checked = 0
    if os.path.exists(report):
        doc = json.load(open(report))
        if "comm" in doc:
            last = int(doc["train"]["epochs"])
            got = runs.get(".", {}).get("scalars", {})
            flat = {}

            def flatten(obj, prefix):
                for k, v in obj.items():
                    if isinstance(v, dict):
                        flatten(v, f"{prefix}/{k}")
                    elif isinstance(v, (int, float)) and not isinstance(v, bool):
                        flat[f"{prefix}/{k}"] = f32(float(v))
            flatten(doc["comm"], "comm")
            for tag, value in flat.items():
                if got.get((tag, last)) != value:
                    problems.append(f"report comm: {tag} at {last} = {got.get((tag, last))}, "
                                    f"report.json {value}")
            want.setdefault("comm", {}).update({(t, last): v for t, v in flat.items()})
            comm_checked = len(flat)
    # cv: the folds' means (report.json's cv.NAME.mean) in the run "mean", at the mean epochs.
    if os.path.exists(report) and "cv" in json.load(open(report)):
        cv = json.load(open(report))["cv"]
        step = int(cv["epochs"]["mean"]) if "epochs" in cv else 0
        got = runs.get("mean", {}).get("scalars", {})
        for k, v in cv.items():
            if isinstance(v, dict) and isinstance(v.get("mean"), (int, float)):
                if got.get((k, step)) != f32(float(v["mean"])):
                    problems.append(f"cv mean: {k} = {got.get((k, step))}, report {v['mean']}")
                want.setdefault("mean", {})[(k, step)] = f32(float(v["mean"]))
    extra = sum(len(r["scalars"]) for r in runs.values()) - sum(len(s) for s in want.values())
    summary = {
        "runs": sorted(runs),
        "records": sum(r["records"] for r in runs.values()),
        "scalars_checked": sum(len(s) for s in want.values()),
        "extra_scalars": extra,
        "comm_checked": comm_checked,
        "histograms": sum(len(r["histograms"]) for r in runs.values()),
        "tags": sorted({t for r in runs.values() for (t, _) in r["scalars"]}),
        "hparams": {k: r["hparams"] for k, r in runs.items() if r["hparams"]},
        "problems": problems[:10],
    }
    print(json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
