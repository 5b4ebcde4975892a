"""Optuna's TPE driving `pstrain train` as its objective: the peer of `pstrain sweep` with method
tpe in scripts/bench/sweep_vs_optuna.sh.

usage: sweep_optuna.py PSTRAIN BASE_CONFIG DATA EPOCHS SEED TRIALS OUT_DIR

Each trial runs `pstrain train BASE_CONFIG` with the trial's values as --set overrides (the same
search space as the sweep file the script writes), reads the validation accuracy and the
training seconds from the run's report.json, and deletes the run directory. Writes OUT_DIR/
optuna.json: every trial's value and parameters in order, the study's wall seconds and the
summed training seconds.
"""
import json
import shutil
import subprocess
import sys
import time

import optuna

pstrain, base, data, epochs, seed, trials, out = sys.argv[1:8]
epochs, seed, trials = int(epochs), int(seed), int(trials)
WIDTHS = ["[32]", "[64]", "[128]", "[256]"]
train_seconds = []


def objective(trial):
    params = {
        "optimizer.lr": trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True),
        "model.hidden": trial.suggest_categorical("model.hidden", WIDTHS),
        "model.dropout": trial.suggest_float("model.dropout", 0.0, 0.5),
        "train.batch_size": trial.suggest_categorical("train.batch_size", [16, 32, 64, 128]),
        "optimizer.name": trial.suggest_categorical("optimizer.name", ["adam", "momentum", "sgd"]),
    }
    run = f"{out}/trial{trial.number}"
    cmd = [pstrain, "train", base, "--set", f"data.train={data}", "--set", "train.patience=0",
           "--set", f"train.epochs={epochs}", "--out", run, "-q"]
    for key, value in params.items():
        cmd += ["--set", f"{key}={value}"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = json.load(open(f"{run}/report.json"))
    shutil.rmtree(run)
    train_seconds.append(report["train"]["seconds"])
    return report["val"]["accuracy"]


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
t0 = time.perf_counter()
study.optimize(objective, n_trials=trials)
wall = time.perf_counter() - t0
json.dump({"values": [t.value for t in study.trials],
           "params": [t.params for t in study.trials],
           "wall_seconds": wall, "train_seconds": sum(train_seconds)},
          open(f"{out}/optuna.json", "w"))
